/**
 * Timeouts: a re-armable deadline, a race against the caller's abort, and one attempt of a
 * streaming call that runs under both.
 */
import { type Clock, realClock } from '../../clock.js';
import { ProviderError } from '../../errors.js';
import { abortedError, linkedController, type ProviderKind } from '../local/streams.js';
import { mapError } from './errors.js';

export interface TimeoutOptions {
  /** Where the timeouts run. Default: real time (simulations pass their virtual clock). */
  readonly clock?: Clock;
  /** `transcribe`: the whole call. LLM and TTS streams: until the first event. Default 15000 ms. */
  readonly timeoutMs?: number;
  /** LLM and TTS streams: the longest gap between two events after the first. Default 30000 ms. */
  readonly idleTimeoutMs?: number;
}

const TIMEOUT = Symbol('timeout');

/**
 * A re-armable deadline: when it fires it rejects `promise` with `provider_timeout` and then aborts
 * `controller` (in that order, so a race sees the timeout rather than the abort it causes).
 */
export function deadline(controller: AbortController, kind: ProviderKind, clock: Clock = realClock) {
  let timer: unknown;
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<never>((_, rej) => {
    reject = rej;
  });
  promise.catch(() => {}); // only observed through races
  const arm = (ms: number | undefined, what: string): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    if (ms === undefined || ms <= 0 || !Number.isFinite(ms)) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      reject(new ProviderError('provider_timeout', kind, `${what} took longer than ${ms} ms`, { retryable: true }));
      controller.abort(TIMEOUT);
    }, ms);
  };
  const dispose = (): void => {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
  };
  return { promise, arm, dispose };
}

/** Rejects with `provider_aborted` when `signal` aborts. */
export function abortion(signal: AbortSignal, kind: ProviderKind): { promise: Promise<never>; dispose: () => void } {
  let onAbort = (): void => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(kind, signal.reason));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** One attempt of a streaming call: it yields to the caller only after the first item arrived. */
export interface StreamAttempt<T> {
  /** Next item, already raced against the caller's abort and the timeouts. */
  next(): Promise<IteratorResult<T>>;
  close(): Promise<void>;
}

export function startStream<T>(
  kind: ProviderKind,
  signal: AbortSignal,
  open: (signal: AbortSignal) => AsyncIterable<T>,
  timeouts: TimeoutOptions,
  what: string,
): StreamAttempt<T> {
  const { controller, dispose } = linkedController(signal);
  const timer = deadline(controller, kind, timeouts.clock);
  timer.arm(timeouts.timeoutMs, `${what} (first event)`);
  const aborted = abortion(signal, kind);
  let iterator: AsyncIterator<T> | undefined;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    timer.dispose();
    aborted.dispose();
    controller.abort();
    dispose();
    // Not awaited: an inner generator stuck in an await would hold the caller hostage. The abort
    // above is what stops its network work; return() lets its finally blocks run when it can.
    void Promise.resolve(iterator?.return?.()).catch(() => {});
  };
  return {
    async next() {
      try {
        // The clock runs only while we wait for the provider, never while the caller holds an
        // item (a paused playout must not look like a stalled provider).
        if (iterator) timer.arm(timeouts.idleTimeoutMs, `${what} (gap between events)`);
        iterator ??= open(controller.signal)[Symbol.asyncIterator]();
        const result = await Promise.race([iterator.next(), timer.promise, aborted.promise]);
        timer.dispose();
        return result;
      } catch (error) {
        await close();
        throw mapError(error, kind, signal);
      }
    },
    close,
  };
}

/**
 * Yields `first` and the rest of `stream` to the caller, closing the attempt however the caller
 * stops (end, error, break). Shared by retries and fallback once an attempt produced its first item.
 */
export async function* drain<T>(stream: StreamAttempt<T>, first: IteratorResult<T>): AsyncGenerator<T> {
  let result = first;
  try {
    while (!result.done) {
      yield result.value;
      result = await stream.next();
    }
  } finally {
    await stream.close();
  }
}
