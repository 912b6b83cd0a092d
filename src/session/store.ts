/**
 * Where a session's durable part lives between connections: its id, a hash of its resume token,
 * its principal, its audio format, its conversation and playbook stage. The live actor stays in the
 * process (the registry); the store lets a session be rebuilt when it is not — after a restart, or
 * on another server sharing the store (RedisSessionStore, ./redis-store.ts).
 *
 * Writes are versioned. Every record carries a `version` the store bumps on each write and the id
 * of the node that wrote it. A write states the version it last read or wrote; when the stored one
 * moved on (another node resumed the session and holds it now), the store refuses the write with a
 * StaleSessionWriteError, so a node that lost a session can never write over the node that has it.
 * A session that ends leaves a tombstone for `tombstoneMs`, so every node sharing the store answers
 * a late resume alike (`session_expired` after a TTL ran out).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError, StaleSessionWriteError } from '../errors.js';
import type { ChatMessage } from '../providers/types.js';

/** What a node writes: the session's durable part (the store adds the version and the node id). */
export interface SessionRecordData {
  readonly sessionId: string;
  /**
   * SHA-256 of the resume tokens that resume the session, hex: the newest, and after a resume,
   * comma-separated, the one the client resumed with (valid until the newest is used). Tokens
   * themselves are never stored.
   */
  readonly resumeTokenHash: string;
  readonly history: readonly ChatMessage[];
  /** The audio the client negotiated, so a resume elsewhere can rebuild the same transport. */
  readonly audio: { readonly transport: 'websocket' | 'webrtc'; readonly sampleRate: number };
  /** What `auth` returned for the client that opened the session (limits count it on every node). */
  readonly principal?: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** After this time (ms since the epoch) the record cannot be resumed: it reads as expired. */
  readonly expiresAt: number;
  /** The playbook the session runs (its name, when the server has several) and its current stage. */
  readonly playbook?: { readonly name?: string; readonly stage: string; readonly data?: Readonly<Record<string, unknown>> };
}

export interface SessionRecord extends SessionRecordData {
  /** Bumped by the store on every write (1 for the first). */
  readonly version: number;
  /** The node that wrote this version (the one holding the session). */
  readonly nodeId: string;
}

/** Why a session's record became a tombstone. */
export type SessionEndReason = 'expired' | 'closed';

/** What the store knows of a session: a live record, or that it ended (a tombstone, or a record past `expiresAt`). */
export type StoredSession =
  | { readonly status: 'live'; readonly record: SessionRecord }
  | { readonly status: 'ended'; readonly reason: SessionEndReason; readonly version: number; readonly nodeId: string };

export interface SessionWrite {
  readonly record: SessionRecordData;
  /** The version this node last read or wrote; 0 for a new session (no record may exist). */
  readonly expectedVersion: number;
  /**
   * An id for this write, reused when it is retried: a write that landed but whose answer was lost
   * (the connection dropped) is then recognised as this node's own and not taken for a takeover.
   */
  readonly writeId: string;
  /** Ids of earlier writes of this node whose outcome is unknown (they failed in transit); one of them may be stored. */
  readonly unconfirmed?: readonly string[];
}

export interface SessionClaim {
  /** The version of the record the resuming node read (and checked the token against). */
  readonly expectedVersion: number;
  /** The hashes of the token issued with this resume and the one presented (SessionRecordData.resumeTokenHash); older ones stop working. */
  readonly resumeTokenHash: string;
  readonly expiresAt: number;
  readonly updatedAt: number;
}

export interface SessionEnd {
  readonly expectedVersion: number;
  readonly reason: SessionEndReason;
  readonly writeId: string;
  readonly unconfirmed?: readonly string[];
}

export interface SessionStore {
  /** The id this store stamps on the records it writes (one store instance per node). */
  readonly nodeId: string;
  /** The session's record or tombstone; undefined when the store never heard of it (or forgot it). */
  get(sessionId: string): Promise<StoredSession | undefined>;
  /** Writes a record; resolves with its new version. Throws StaleSessionWriteError when `expectedVersion` is not the stored one. */
  write(write: SessionWrite): Promise<number>;
  /** Takes the session over on a resume: new token hash, this node as owner, version bumped. Throws StaleSessionWriteError. */
  claim(sessionId: string, claim: SessionClaim): Promise<number>;
  /** Turns the record into a tombstone. Throws StaleSessionWriteError when another node holds the session. */
  end(sessionId: string, end: SessionEnd): Promise<void>;
  /** Forgets the session entirely (record or tombstone), unconditionally. */
  delete(sessionId: string): Promise<void>;
  close?(): Promise<void>;
}

/** How long a tombstone is kept by default: a day, so a late resume hears why long after. */
export const DEFAULT_TOMBSTONE_MS = 86_400_000;

/** A node id unique enough to tell the nodes sharing a store apart in records and logs. */
export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export function checkTombstoneMs(field: string, value: number | undefined): number {
  if (value === undefined) return DEFAULT_TOMBSTONE_MS;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(field, `must be a positive integer (ms), got ${String(value)}`);
  return value;
}

export interface MemorySessionStoreOptions {
  /** Default: host name, process id and a random suffix. */
  readonly nodeId?: string;
  /** How long an ended session's tombstone is kept. Default 86 400 000 ms (24 h). */
  readonly tombstoneMs?: number;
  /** Tombstones kept at most (the oldest are forgotten first). Default 10 000. */
  readonly maxTombstones?: number;
  readonly now?: () => number;
}

interface Entry {
  version: number;
  nodeId: string;
  writeId: string;
  /** undefined for a tombstone */
  record: SessionRecordData | undefined;
  reason: SessionEndReason | undefined;
  /** When the entry itself is forgotten (the Redis key's TTL). */
  dropAt: number;
}

interface MemoryData {
  readonly entries: Map<string, Entry>;
  readonly tombstones: Set<string>;
}

/**
 * The default store: a Map with the same semantics as the Redis store (versions, claims,
 * tombstones, expiry). Nothing survives the process. `forNode` gives another node's view of the
 * same data, for running several servers in one process (tests, demos).
 */
export class MemorySessionStore implements SessionStore {
  readonly nodeId: string;
  readonly #data: MemoryData;
  readonly #now: () => number;
  readonly #tombstoneMs: number;
  readonly #maxTombstones: number;

  constructor(options: MemorySessionStoreOptions | (() => number) = {}, data?: MemoryData) {
    // (A bare clock function is the constructor's original signature.)
    const resolved = typeof options === 'function' ? { now: options } : options;
    this.nodeId = resolved.nodeId ?? defaultNodeId();
    this.#now = resolved.now ?? Date.now;
    this.#tombstoneMs = checkTombstoneMs('tombstoneMs', resolved.tombstoneMs);
    this.#maxTombstones = resolved.maxTombstones ?? 10_000;
    if (!Number.isInteger(this.#maxTombstones) || this.#maxTombstones < 0) throw new ConfigError('maxTombstones', `must be an integer >= 0, got ${String(this.#maxTombstones)}`);
    this.#data = data ?? { entries: new Map(), tombstones: new Set() };
  }

  /** The same records seen from another node (its own node id). */
  forNode(nodeId: string): MemorySessionStore {
    return new MemorySessionStore({ nodeId, now: this.#now, tombstoneMs: this.#tombstoneMs, maxTombstones: this.#maxTombstones }, this.#data);
  }

  /** Live records and tombstones held. */
  get size(): number {
    return this.#data.entries.size;
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const entry = this.#entry(sessionId);
    if (entry === undefined) return undefined;
    if (entry.record === undefined || entry.record.expiresAt <= this.#now()) {
      return { status: 'ended', reason: entry.reason ?? 'expired', version: entry.version, nodeId: entry.nodeId };
    }
    return { status: 'live', record: { ...entry.record, version: entry.version, nodeId: entry.nodeId } };
  }

  async write(write: SessionWrite): Promise<number> {
    const { sessionId } = write.record;
    const entry = this.#entry(sessionId);
    const applied = this.#check(sessionId, entry, write.expectedVersion, write.writeId, write.unconfirmed);
    if (applied !== undefined) return applied;
    const version = (entry?.version ?? 0) + 1;
    this.#data.tombstones.delete(sessionId);
    this.#data.entries.set(sessionId, {
      version,
      nodeId: this.nodeId,
      writeId: write.writeId,
      record: write.record,
      reason: undefined,
      dropAt: write.record.expiresAt + this.#tombstoneMs,
    });
    return version;
  }

  async claim(sessionId: string, claim: SessionClaim): Promise<number> {
    const entry = this.#entry(sessionId);
    if (entry === undefined || entry.record === undefined || entry.version !== claim.expectedVersion || entry.record.expiresAt <= this.#now()) {
      throw new StaleSessionWriteError(sessionId, claim.expectedVersion, entry?.version ?? 0);
    }
    entry.version += 1;
    entry.nodeId = this.nodeId;
    entry.writeId = '';
    entry.record = { ...entry.record, resumeTokenHash: claim.resumeTokenHash, expiresAt: claim.expiresAt, updatedAt: claim.updatedAt };
    entry.dropAt = claim.expiresAt + this.#tombstoneMs;
    return entry.version;
  }

  async end(sessionId: string, end: SessionEnd): Promise<void> {
    const entry = this.#entry(sessionId);
    if (this.#check(sessionId, entry, end.expectedVersion, end.writeId, end.unconfirmed) !== undefined) return;
    this.#data.entries.set(sessionId, {
      version: (entry?.version ?? 0) + 1,
      nodeId: this.nodeId,
      writeId: end.writeId,
      record: undefined,
      reason: end.reason,
      dropAt: this.#now() + this.#tombstoneMs,
    });
    const tombstones = this.#data.tombstones;
    tombstones.delete(sessionId);
    tombstones.add(sessionId);
    // A Set iterates in insertion order: the first ones are the oldest.
    for (const id of tombstones) {
      if (tombstones.size <= this.#maxTombstones) break;
      tombstones.delete(id);
      this.#data.entries.delete(id);
    }
  }

  async delete(sessionId: string): Promise<void> {
    this.#data.entries.delete(sessionId);
    this.#data.tombstones.delete(sessionId);
  }

  /** The entry, unless its time is up (then it is dropped, as Redis drops a key whose TTL ran out). */
  #entry(sessionId: string): Entry | undefined {
    const entry = this.#data.entries.get(sessionId);
    if (entry === undefined) return undefined;
    if (entry.dropAt <= this.#now()) {
      this.#data.entries.delete(sessionId);
      this.#data.tombstones.delete(sessionId);
      return undefined;
    }
    return entry;
  }

  /**
   * The same rule as the Redis scripts: a write goes on when it expects the stored version, or when
   * the stored version is one of this node's own writes whose answer was lost. Returns the stored
   * version when this very write is already stored (nothing to do), throws when the record moved on.
   */
  #check(sessionId: string, entry: Entry | undefined, expected: number, writeId: string, unconfirmed: readonly string[] | undefined): number | undefined {
    const stored = entry?.version ?? 0;
    if (stored === expected && (entry === undefined || entry.record !== undefined)) return undefined;
    if (entry !== undefined && entry.nodeId === this.nodeId && entry.writeId !== '') {
      if (entry.writeId === writeId) return stored;
      if (entry.record !== undefined && unconfirmed?.includes(entry.writeId) === true) return undefined;
    }
    throw new StaleSessionWriteError(sessionId, expected, stored);
  }
}
