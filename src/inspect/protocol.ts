/**
 * The inspector stream (`/inspect/ws`): JSON text messages, documented in docs/inspect.md.
 * Pure: message types and the parser of what a client sends; no sockets here.
 */
import type { TurnMetrics } from '../server/hooks.js';
import type { Statechart } from './statechart.js';

export const INSPECT_PROTOCOL_VERSION = 1;

/** One live (or recently ended) session in the list. */
export interface SessionSummary {
  readonly id: string;
  /** The public state (`listening`, `thinking`, `interrupted.paused`, `suspended`, `closed`…); '' before the actor started. */
  readonly state: string;
  readonly voice: string;
  /** The playbook stage, or null. */
  readonly stage: string | null;
  /** Wall-clock ms (Date.now()) when the session was created, and its age when the list was sent. */
  readonly createdAt: number;
  readonly ageMs: number;
  /** Replies started (turn.start), speculative ones committed included. */
  readonly turns: number;
  /** The session closed; it stays listed for a while (`keepEndedMs`). */
  readonly ended: boolean;
}

/** An actor of a session's actor system. `actor` is XState's unique `sessionId` of it (`x:12`). */
export interface ActorSummary {
  readonly actor: string;
  /** Its id in its parent (`reply`, `stt`, `0.session.active.endpoint.deciding.detecting`). */
  readonly id: string;
  readonly parent: string | null;
  /** The logic's name: the machine id, or the `src` it was invoked or spawned from (`llm`, `tts`). */
  readonly src: string;
  /** A machine: the key of its statechart (charts are sent once per client). */
  readonly chart?: string;
  /** A machine: its current state value. */
  readonly value?: unknown;
  readonly status: string;
}

/** One line of the event log. `t` is wall-clock ms; `actor` an ActorSummary's `actor`. */
export type LogEntry =
  | ({ readonly kind: 'actor'; readonly t: number } & Omit<ActorSummary, 'value' | 'status'>)
  | { readonly kind: 'event'; readonly t: number; readonly actor: string; readonly source: string | null; readonly event: unknown }
  | { readonly kind: 'transition'; readonly t: number; readonly actor: string; readonly event: string; readonly source: string; readonly targets: readonly string[] }
  | { readonly kind: 'state'; readonly t: number; readonly actor: string; readonly value: unknown; readonly status: string }
  /** A non-machine actor (a provider call, a tool round, a callback) ended: done, error or stopped. */
  | { readonly kind: 'stopped'; readonly t: number; readonly actor: string; readonly status: string }
  /** An event the session emitted to the outside (transcript.final, turn.start, tools.start, reply.done, error…). */
  | { readonly kind: 'emit'; readonly t: number; readonly actor: string; readonly event: unknown }
  /** A turn's timings (the fields of metrics.turn, as the onTurnEnd hook has them). */
  | { readonly kind: 'turn'; readonly t: number; readonly metrics: Omit<TurnMetrics, 'sessionId'> };

export interface TranscriptLine {
  /** Wall-clock ms; absent for lines from before the watch (read from the session's history). */
  readonly t?: number;
  readonly role: 'user' | 'assistant';
  readonly text: string;
  /** A user line typed (not spoken, known for live lines); an assistant line cut by the user. */
  readonly typed?: true;
  readonly interrupted?: true;
}

export type InspectServerMessage =
  | { readonly type: 'inspect.sessions'; readonly protocol: number; readonly at: number; readonly sessions: readonly SessionSummary[] }
  | { readonly type: 'inspect.chart'; readonly key: string; readonly chart: Statechart }
  | {
      readonly type: 'inspect.session';
      readonly session: SessionSummary;
      /** The session actor's `actor`. */
      readonly root: string | null;
      readonly actors: readonly ActorSummary[];
      /** The latest entries logged while some client watched this session (up to `maxLogEntries`). */
      readonly log: readonly LogEntry[];
      /** The conversation so far (the session's history: user and assistant messages). */
      readonly transcript: readonly TranscriptLine[];
      readonly turns: readonly Omit<TurnMetrics, 'sessionId'>[];
    }
  /** New entries, per watched session (one batch for every session a `*` watcher sees). `dropped`: entries not sent because the client fell behind. */
  | { readonly type: 'inspect.log'; readonly logs: readonly { readonly sessionId: string; readonly entries: readonly LogEntry[] }[]; readonly dropped?: number }
  | { readonly type: 'inspect.error'; readonly message: string };

export type InspectClientMessage = { readonly type: 'watch'; readonly sessionId: string } | { readonly type: 'unwatch' };

/** Watching every session: `{ "type": "watch", "sessionId": "*" }`. */
export const WATCH_ALL = '*';

/** Parses a client message; undefined for anything else (the server answers `inspect.error`). */
export function parseInspectClientMessage(text: string): InspectClientMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as { type?: unknown; sessionId?: unknown };
  if (message.type === 'unwatch') return { type: 'unwatch' };
  if (message.type === 'watch' && typeof message.sessionId === 'string' && message.sessionId.length > 0 && message.sessionId.length <= 200) {
    return { type: 'watch', sessionId: message.sessionId };
  }
  return undefined;
}
