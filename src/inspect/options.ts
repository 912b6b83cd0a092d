/** The inspector's options (VoiceServer's `inspect: { … }`) and their defaults: docs/inspect.md. */
import type { InspectionEvent } from 'xstate';

export interface InspectOptions {
  /**
   * Also hands every inspection event of every session to this function (e.g. `@statelyai/inspect`'s
   * `createWebSocketInspector().inspect.next`). Events are scrubbed copies: `event`, `snapshot` and
   * `action.params` scrubbed, `actorRef` a read-only view whose `getSnapshot()` is scrubbed too.
   * Every session is then inspected all the time, watched or not.
   */
  readonly forward?: (event: InspectionEvent) => void;
  /** Log entries kept per session, for a client that starts watching it. Default 200. */
  readonly maxLogEntries?: number;
  /** Turn timings kept per session. Default 100. */
  readonly maxTurns?: number;
  /** How often clients get the session list (ages, turns), at the least. Default 1000 ms. */
  readonly listIntervalMs?: number;
  /** A session's state or stage changed: the list goes out again, at most this often. Default 250 ms. */
  readonly listThrottleMs?: number;
  /** How long new log entries wait, to go out together. Default 50 ms. */
  readonly flushMs?: number;
  /** A closed session stays listed this long. Default 60 000 ms. */
  readonly keepEndedMs?: number;
  /** Bytes a client may have queued before log batches to it are dropped (and counted). Default 8 MiB. */
  readonly maxBufferedBytes?: number;
}

export const DEFAULT_INSPECT_OPTIONS = {
  maxLogEntries: 200,
  maxTurns: 100,
  listIntervalMs: 1000,
  listThrottleMs: 250,
  flushMs: 50,
  keepEndedMs: 60_000,
  maxBufferedBytes: 8 * 1024 * 1024,
} as const;

export type Limits = { readonly [K in keyof typeof DEFAULT_INSPECT_OPTIONS]: number };
