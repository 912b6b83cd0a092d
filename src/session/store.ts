/**
 * Where a session's durable part lives between connections: its id, a hash of its resume token,
 * its audio format and its conversation. The live actor stays in the process (the registry); the
 * store lets a session be rebuilt when it is not — after a restart, or on another server sharing
 * the store — and is the seam for Redis.
 */
import type { ChatMessage } from '../providers/types.js';

export interface SessionRecord {
  readonly sessionId: string;
  /** SHA-256 of the resume token, hex. The token itself is never stored. */
  readonly resumeTokenHash: string;
  readonly history: readonly ChatMessage[];
  /** The audio the client negotiated, so a resume elsewhere can rebuild the same transport. */
  readonly audio: { readonly transport: 'websocket' | 'webrtc'; readonly sampleRate: number };
  readonly createdAt: number;
  readonly updatedAt: number;
  /** After this time (ms since the epoch) the record is dead. */
  readonly expiresAt: number;
  /** The playbook the session runs (its name, when the server has several) and its current stage. */
  readonly playbook?: { readonly name?: string; readonly stage: string; readonly data?: Readonly<Record<string, unknown>> };
}

export interface SessionStore {
  get(sessionId: string): Promise<SessionRecord | undefined>;
  set(record: SessionRecord): Promise<void>;
  delete(sessionId: string): Promise<void>;
  close?(): Promise<void>;
}

/** The default store: a Map with expiry. Nothing survives the process. */
export class MemorySessionStore implements SessionStore {
  readonly #records = new Map<string, SessionRecord>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async get(sessionId: string): Promise<SessionRecord | undefined> {
    const record = this.#records.get(sessionId);
    if (record === undefined) return undefined;
    if (record.expiresAt <= this.#now()) {
      this.#records.delete(sessionId);
      return undefined;
    }
    return record;
  }

  async set(record: SessionRecord): Promise<void> {
    this.#records.set(record.sessionId, record);
  }

  async delete(sessionId: string): Promise<void> {
    this.#records.delete(sessionId);
  }

  get size(): number {
    return this.#records.size;
  }
}
