/**
 * The server's side of the session store: what each live session writes (its record, at turn
 * boundaries, stage changes, suspend and resume, through one SessionStoreWriter per session), how a
 * session not live here is rebuilt from its record (checked token, limits, claim), and what happens
 * to a copy of a session that another node has taken over (it ends quietly; it never writes over
 * the other node). VoiceServer builds the hosts; this decides what reaches the store and when.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { StaleSessionWriteError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { NegotiatedAudio } from '../protocol/messages.js';
import type { ChatMessage } from '../providers/types.js';
import { newResumeToken } from '../session/session.js';
import type { SessionRecordData, SessionStore, StoredSession } from '../session/store.js';
import { SessionStoreWriter, type StoreRetry } from '../session/store-writer.js';
import type { NewHost, RestoreResult, ServerContext } from './context.js';
import type { SessionRegistry } from './registry.js';
import type { SessionHost, SessionHostOptions } from './session-host.js';

/** The close reason of a session this node no longer holds (resumed on another node sharing the store). */
export const SESSION_MOVED = 'session_moved';

export interface SessionPersistenceOptions {
  readonly store: SessionStore;
  readonly registry: SessionRegistry;
  readonly logger: Logger;
  /** The resume window of a suspended session (session.ttlMs). */
  readonly ttlMs: number;
  /** How long a connected session's record stays resumable after its last write (session.recordTtlMs). */
  readonly recordTtlMs: number;
  readonly retry: StoreRetry;
  /** The close reason of sessions ended by a server that stops: their records are kept for a resume. */
  readonly stoppedReason: string;
}

type Stage = { readonly id: string; readonly data?: Readonly<Record<string, unknown>> };

/** How one session's host is wired to the store. */
export interface SessionRecordHooks {
  /** Every token the session issues (the inspector cuts them out of what it shows); grows at each resume. */
  readonly secrets: string[];
  readonly hostOptions: Required<Pick<SessionHostOptions, 'onHistory' | 'onStage' | 'onSuspended' | 'onTokenRotated'>>;
  /** The host these hooks write for (once it exists). */
  attach(host: SessionHost): void;
  /** The host reached `closed`: its record is kept (server stopped), becomes a tombstone, or is left alone (moved). */
  closed(host: SessionHost): void;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * A record's `resumeTokenHash`: the hash of the newest token, then (comma-separated, only while the
 * session is suspended) of the one the client last resumed with, which it still holds if the answer
 * carrying the newest was lost (see SessionHost.resume).
 */
export function acceptedTokenHashes(newest: string, held: string | undefined): string {
  return held === undefined || held === newest ? sha256(newest) : `${sha256(newest)},${sha256(held)}`;
}

/** Whether `token` is one of the tokens a record accepts; every candidate is compared in constant time. */
export function tokenAccepted(resumeTokenHash: string, token: string): boolean {
  const presented = createHash('sha256').update(token).digest();
  let accepted = false;
  for (const hex of resumeTokenHash.split(',')) {
    const expected = Buffer.from(hex, 'hex');
    accepted = (expected.length === presented.length && timingSafeEqual(expected, presented)) || accepted;
  }
  return accepted;
}

export class SessionPersistence {
  readonly #options: SessionPersistenceOptions;
  /** Each live session's store writer (and ended ones' until their last write landed). */
  readonly #writers = new Map<SessionHost, SessionStoreWriter>();

  constructor(options: SessionPersistenceOptions) {
    this.#options = options;
  }

  /** The hooks of a new host: `playbook` is set when the session runs one (its record then keeps the stage). */
  forSession(spec: NewHost, playbook: { readonly name: string; readonly stage: Stage | undefined } | undefined): SessionRecordHooks {
    const { store, registry, logger, ttlMs, recordTtlMs } = this.#options;
    // The token the client resumed with stays good while the session waits for it (see SessionHost.resume),
    // so the record names it only while the session is suspended: a session attached to a client on
    // some node cannot be taken over elsewhere with it.
    let token = spec.resumeToken;
    let held = spec.heldResumeToken;
    const createdAt = spec.restored?.createdAt ?? Date.now();
    let stage = playbook?.stage;
    let principal = spec.principal;
    /** While suspended, the record is resumable until the TTL runs out; while live, for `recordTtlMs` after each write (its node may die). */
    let suspendedAt: number | undefined;
    let lastHistory: readonly ChatMessage[] = spec.history ?? [];
    let host: SessionHost | undefined;
    const record = (history: readonly ChatMessage[]): SessionRecordData => {
      const now = Date.now();
      lastHistory = history;
      principal ??= registry.principalOf(spec.sessionId);
      return {
        sessionId: spec.sessionId,
        resumeTokenHash: acceptedTokenHashes(token, suspendedAt === undefined ? undefined : held),
        history,
        ...(principal === undefined ? {} : { principal }),
        ...(playbook === undefined || stage === undefined
          ? {}
          : { playbook: { ...(playbook.name === '' ? {} : { name: playbook.name }), stage: stage.id, ...(stage.data === undefined ? {} : { data: stage.data }) } }),
        audio: { transport: spec.audio.transport, sampleRate: spec.audio.sampleRate },
        createdAt,
        updatedAt: now,
        expiresAt: suspendedAt === undefined ? now + recordTtlMs : suspendedAt + ttlMs,
      };
    };
    const writer = new SessionStoreWriter({
      store,
      sessionId: spec.sessionId,
      version: spec.restored?.version ?? 0,
      logger: logger.child({ session: spec.sessionId }),
      retry: this.#options.retry,
      // The session was resumed on another node: this copy must not go on (nor write over it there).
      onMoved: () => host?.handOver(),
    });
    const secrets = [spec.resumeToken];
    return {
      secrets,
      hostOptions: {
        onHistory: (_host, history) => writer.write(record(history)),
        onStage: (next) => {
          stage = next;
          writer.write(record(lastHistory));
        },
        onSuspended: (suspended) => {
          suspendedAt = Date.now();
          writer.write(record(suspended.history));
        },
        onTokenRotated: (resumed, issued, presented) => {
          token = issued;
          held = presented;
          secrets.push(issued);
          suspendedAt = undefined;
          writer.write(record(resumed.history));
        },
      },
      attach: (attached) => {
        host = attached;
        this.#writers.set(attached, writer);
      },
      closed: (closed) => {
        if (closed.closeReason === SESSION_MOVED) writer.abandon();
        // A server that stops keeps its sessions' records: another server sharing the store (or this
        // one, restarted) can resume them within the TTL.
        else if (closed.closeReason === this.#options.stoppedReason) {
          suspendedAt ??= Date.now();
          writer.finish(record(closed.history));
        } else writer.end(closed.closeReason === 'expired' ? 'expired' : 'closed');
        void writer.settle().then(() => this.#writers.delete(closed));
      },
    };
  }

  /** Before an in-process resume: false (and the copy here ended quietly) when the store says another node holds the session now. */
  async checkHeld(host: SessionHost): Promise<boolean> {
    let stored: StoredSession | undefined;
    try {
      stored = await this.#options.store.get(host.id);
    } catch {
      // Unreachable: the copy here is all there is to go on (its next write finds out).
      return true;
    }
    const owner = stored === undefined ? undefined : stored.status === 'live' ? stored.record.nodeId : stored.nodeId;
    if (owner === undefined || owner === this.#options.store.nodeId) return true;
    this.#release(host);
    return false;
  }

  /** A resume of a session that is not live here: from the store's record, claimed before the client hears back. `build` makes the host. */
  async restore(sessionId: string, resumeToken: string, admit: Parameters<ServerContext['restore']>[2], build: (spec: NewHost) => SessionHost): Promise<RestoreResult> {
    const { store, registry } = this.#options;
    const refused = { ok: false, code: 'session_resume_refused', message: 'the session cannot be resumed with this token' } as const;
    let stored: StoredSession | undefined;
    try {
      stored = await store.get(sessionId);
    } catch (error) {
      return this.#unavailable(error);
    }
    if (stored === undefined) return { ok: false, code: 'session_not_found', message: 'no such session' };
    if (stored.status === 'ended') {
      return stored.reason === 'expired'
        ? { ok: false, code: 'session_expired', message: 'the session was not resumed within its TTL and has ended' }
        : { ok: false, code: 'session_not_found', message: 'the session has ended' };
    }
    const record = stored.record;
    if (!tokenAccepted(record.resumeTokenHash, resumeToken)) return refused;
    // A copy live here that the store says this node still holds has refused the token already, and
    // it is the one that counts (the store may not have its latest token yet).
    const local = registry.get(sessionId);
    const stale = local !== undefined && !local.closed ? local : undefined;
    if (stale !== undefined && record.nodeId === store.nodeId) return refused;
    const refusal = admit(record.principal);
    if (refusal !== undefined) return { ok: false, ...refusal };
    const token = newResumeToken();
    const now = Date.now();
    let version: number;
    try {
      // Attached from now on: the record names the new token only (the one presented counts again if the session is suspended).
      version = await store.claim(sessionId, { expectedVersion: record.version, resumeTokenHash: acceptedTokenHashes(token, undefined), expiresAt: now + this.#options.recordTtlMs, updatedAt: now });
    } catch (error) {
      // Another node claimed the same record first (the client tried two at once): that one has it.
      if (error instanceof StaleSessionWriteError) return refused;
      return this.#unavailable(error);
    }
    // This node's own copy fell behind (the session went on elsewhere and came back): it ends
    // quietly, without touching the record just claimed.
    if (stale !== undefined) this.#release(stale);
    const audio: NegotiatedAudio =
      record.audio.transport === 'webrtc'
        ? { transport: 'webrtc', format: 'opus', sampleRate: 48_000, channels: 1, frameMs: 20 }
        : { transport: 'websocket', format: 'pcm16', sampleRate: record.audio.sampleRate as 16_000 | 24_000 | 48_000, channels: 1, frameMs: 20 };
    const playbook = record.playbook;
    const host = build({
      sessionId,
      resumeToken: token,
      heldResumeToken: resumeToken,
      audio,
      history: record.history,
      ...(record.principal === undefined ? {} : { principal: record.principal }),
      restored: { version, createdAt: record.createdAt },
      ...(playbook === undefined ? {} : { playbook: { name: playbook.name ?? '', stage: playbook.stage, ...(playbook.data === undefined ? {} : { data: playbook.data }) } }),
    });
    return { ok: true, host, principal: record.principal, resumeToken: token };
  }

  /** The server stops: every write still waiting gets one more try, then the store closes. */
  async close(): Promise<void> {
    await Promise.all([...this.#writers.values()].map((writer) => writer.settle({ lastChance: true })));
    await this.#options.store.close?.();
  }

  /** Ends this node's copy of a session held elsewhere, without a write. */
  #release(host: SessionHost): void {
    this.#writers.get(host)?.abandon();
    host.close(SESSION_MOVED);
  }

  /** A store that did not answer: the client hears `session_store_unavailable` (and may try again); the log has the message only. */
  #unavailable(error: unknown): RestoreResult {
    this.#options.logger.warn({ message: error instanceof Error ? error.message : String(error) }, 'session store unavailable for a resume');
    return { ok: false, code: 'session_store_unavailable', message: 'the session store is unavailable; try again' };
  }
}
