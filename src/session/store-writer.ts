/**
 * One session's writes to the session store, in order: at most one in flight, the latest record
 * wins (a record waiting to be written is replaced by a newer one), a failed write is retried with
 * backoff until it lands or the session ends, and a refused (stale) write means another node holds
 * the session now — the writer stops for good and says so, and never writes again.
 *
 * The session goes on talking while a write waits: nothing here is on the path of a reply.
 */
import { randomBytes } from 'node:crypto';
import { StaleSessionWriteError, isVoxError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SessionEndReason, SessionRecordData, SessionStore } from './store.js';

export interface StoreRetry {
  /** The first retry waits this long; each next one twice as long. Default 100 ms. */
  readonly initialDelayMs: number;
  /** The longest wait between retries. Default 5 000 ms. */
  readonly maxDelayMs: number;
}

export const DEFAULT_STORE_RETRY: StoreRetry = { initialDelayMs: 100, maxDelayMs: 5000 };

export interface SessionStoreWriterOptions {
  readonly store: SessionStore;
  readonly sessionId: string;
  /** The version of the record this node holds: 0 for a new session, the claimed one for a resumed one. */
  readonly version: number;
  readonly logger: Logger;
  readonly retry?: StoreRetry;
  /** A write was refused: the session is held elsewhere now. Called once. */
  readonly onMoved: () => void;
}

type Job = { readonly kind: 'write'; readonly record: SessionRecordData; readonly id: string } | { readonly kind: 'end'; readonly reason: SessionEndReason; readonly id: string };

const newWriteId = (): string => randomBytes(9).toString('base64url');

export class SessionStoreWriter {
  readonly #options: SessionStoreWriterOptions;
  readonly #retry: StoreRetry;
  #version: number;
  /** The next job (the latest record, or the end); replaced, never queued behind. */
  #next: Job | undefined;
  #running = false;
  #ended = false;
  #moved = false;
  /** No retries any more (the server stops): each job gets one more attempt. */
  #lastChance = false;
  /** Writes that failed in transit since the last one that landed: one of them may be stored. */
  #unconfirmed: string[] = [];
  #timer: { handle: NodeJS.Timeout; wake: () => void } | undefined;
  #idle: (() => void)[] = [];

  constructor(options: SessionStoreWriterOptions) {
    this.#options = options;
    this.#retry = options.retry ?? DEFAULT_STORE_RETRY;
    this.#version = options.version;
  }

  /** The version of the last write that landed. */
  get version(): number {
    return this.#version;
  }

  /** True once a write was refused: another node holds the session. */
  get moved(): boolean {
    return this.#moved;
  }

  /** True when nothing waits to be written and nothing is in flight. */
  get idle(): boolean {
    return !this.#running && this.#next === undefined;
  }

  /** Writes `record` (after the write in flight, if any; a newer record given meanwhile replaces it). */
  write(record: SessionRecordData): void {
    if (this.#ended || this.#moved) return;
    this.#next = { kind: 'write', record, id: newWriteId() };
    this.#pump();
  }

  /** The session ended: its record becomes a tombstone (replacing any record still waiting). The last job. */
  end(reason: SessionEndReason): void {
    if (this.#ended || this.#moved) return;
    this.#ended = true;
    this.#next = { kind: 'end', reason, id: newWriteId() };
    this.#pump();
  }

  /** The last job: no more writes will be given (a server that stops writes its sessions' records for a resume elsewhere). */
  finish(record: SessionRecordData): void {
    if (this.#ended || this.#moved) return;
    this.#ended = true;
    this.#next = { kind: 'write', record, id: newWriteId() };
    this.#pump();
  }

  /** Stops writing without touching the store (another node holds the session, or it is being replaced). */
  abandon(): void {
    this.#ended = true;
    this.#next = undefined;
    this.#wakeUp();
  }

  /**
   * Resolves when nothing is left to write. With `lastChance`, a waiting retry runs now and a
   * failure is not retried again (the server is stopping; the store is about to close).
   */
  settle(options: { readonly lastChance?: boolean } = {}): Promise<void> {
    if (options.lastChance === true) {
      this.#lastChance = true;
      this.#wakeUp();
    }
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #wakeUp(): void {
    const timer = this.#timer;
    if (timer === undefined) return;
    this.#timer = undefined;
    clearTimeout(timer.handle);
    timer.wake();
  }

  #pump(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run().finally(() => {
      this.#running = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    });
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (this.#next !== undefined && !this.#moved) {
      const job = this.#next;
      try {
        await this.#attempt(job);
        this.#unconfirmed = [];
        attempt = 0;
        if (this.#next === job) this.#next = undefined;
      } catch (error) {
        if (error instanceof StaleSessionWriteError) {
          this.#moved = true;
          this.#next = undefined;
          this.#options.logger.warn({ storedVersion: error.storedVersion, expectedVersion: error.expectedVersion }, 'session store refused a write: the session is held by another node now');
          this.#options.onMoved();
          return;
        }
        // The write may have landed before the failure was seen: remember its id.
        if (!this.#unconfirmed.includes(job.id)) this.#unconfirmed.push(job.id);
        attempt++;
        const delayMs = Math.min(this.#retry.maxDelayMs, this.#retry.initialDelayMs * 2 ** (attempt - 1));
        // The code and message only: a failed command's error object carries the record.
        this.#options.logger.warn(
          { code: isVoxError(error) ? error.code : 'internal', message: error instanceof Error ? error.message : String(error), attempt, retryInMs: this.#lastChance ? undefined : delayMs },
          this.#lastChance ? 'session store write failed; giving up (stopping)' : 'session store write failed; retrying',
        );
        if (this.#lastChance) {
          if (this.#next === job) this.#next = undefined;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.#timer = { handle: setTimeout(() => ((this.#timer = undefined), resolve()), delayMs), wake: resolve };
        });
      }
    }
  }

  async #attempt(job: Job): Promise<void> {
    const { store, sessionId } = this.#options;
    const unconfirmed = this.#unconfirmed.filter((id) => id !== job.id);
    if (job.kind === 'write') {
      this.#version = await store.write({ record: job.record, expectedVersion: this.#version, writeId: job.id, ...(unconfirmed.length === 0 ? {} : { unconfirmed }) });
    } else {
      await store.end(sessionId, { expectedVersion: this.#version, reason: job.reason, writeId: job.id, ...(unconfirmed.length === 0 ? {} : { unconfirmed }) });
    }
  }
}
