/** One session as the inspector knows it (src/inspect/inspector.ts): its actor, what the hooks told, its log. */
import type { AnyActorRef, Subscription } from 'xstate';
import { publicState } from '../../machines/session-types.js';
import type { ChatMessage } from '../providers/types.js';
import type { TurnMetrics } from '../server/hooks.js';
import { Forwarder } from './forward.js';
import type { ActorSummary, SessionSummary } from './protocol.js';

/** Deep equality of two state values (small objects of strings). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((key) => sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

export interface ActorState {
  readonly summary: Omit<ActorSummary, 'value' | 'status'>;
  value: unknown;
  status: string;
}

/** What the inspector reads of a snapshot. */
export interface Snapshotish {
  readonly status: string;
  readonly value?: unknown;
  readonly children?: Readonly<Record<string, AnyActorRef | undefined>>;
  readonly context?: { readonly history?: readonly ChatMessage[] };
}

/** One session, as the inspector knows it. Log entries are kept serialized (JSON text). */
export class SessionRecord {
  readonly id: string;
  readonly createdAt = Date.now();
  readonly secrets: readonly string[];
  readonly turnMetrics: Omit<TurnMetrics, 'sessionId'>[] = [];
  readonly forwarder: Forwarder | undefined;
  root: AnyActorRef | undefined;
  stage: string | null = null;
  turns = 0;
  endedAt: number | undefined;
  /** Clients watching this session by id. */
  watchers = 0;
  /** While inspected: the live actors, and entries not sent yet (with the charts they name). */
  readonly actors = new Map<string, ActorState>();
  pending: string[] = [];
  readonly charts = new Set<string>();
  inspection: Subscription | undefined;
  listing: Subscription | undefined;
  /** Actor ids as JSON strings (each is written into many entries). */
  readonly #quoted = new Map<string, string>();
  readonly #ring: (string | undefined)[];
  #next = 0;

  constructor(id: string, secrets: readonly string[], maxLog: number, forward: boolean) {
    this.id = id;
    this.secrets = secrets;
    this.#ring = new Array<string | undefined>(Math.max(1, maxLog));
    this.forwarder = forward ? new Forwarder(secrets) : undefined;
  }

  log(entry: string): void {
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#ring.length;
    this.pending.push(entry);
  }

  quoted(actor: string): string {
    let text = this.#quoted.get(actor);
    if (text === undefined) {
      text = JSON.stringify(actor);
      this.#quoted.set(actor, text);
    }
    return text;
  }

  forgetQuoted(actor: string): void {
    this.#quoted.delete(actor);
  }

  /** The ring, oldest first. */
  recent(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.#ring.length; i++) {
      const entry = this.#ring[(this.#next + i) % this.#ring.length];
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshotish | undefined {
    return this.root?.getSnapshot() as Snapshotish | undefined;
  }

  summary(now: number): SessionSummary {
    const snapshot = this.snapshot();
    const ended = this.endedAt !== undefined || (snapshot !== undefined && snapshot.status !== 'active');
    const state = ended ? { state: 'closed', voice: 'silent' } : snapshot === undefined ? { state: '', voice: 'silent' } : publicState(snapshot.value);
    return { id: this.id, state: state.state, voice: state.voice, stage: this.stage, createdAt: this.createdAt, ageMs: now - this.createdAt, turns: this.turns, ended };
  }
}
