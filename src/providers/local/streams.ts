/**
 * Small stream and cancellation helpers shared by the providers and the resilience layer.
 * Nothing here does I/O.
 */
import { type Clock, realClock, sleep as clockSleep } from '../../clock.js';
import { ProviderError } from '../../errors.js';

export type ProviderKind = 'stt' | 'llm' | 'tts';

/** The `provider_aborted` error a cancelled call throws. */
export function abortedError(kind: ProviderKind | 'other', cause?: unknown): ProviderError {
  return new ProviderError('provider_aborted', kind, 'the call was aborted', cause === undefined ? {} : { cause });
}

/** Throws `provider_aborted` if `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal, kind: ProviderKind): void {
  if (signal.aborted) throw abortedError(kind, signal.reason);
}

/**
 * An AbortController that also aborts when `parent` does. `dispose()` detaches it from the parent
 * so long-lived parent signals do not collect listeners.
 */
export function linkedController(parent: AbortSignal): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => {} };
  }
  const onAbort = (): void => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener('abort', onAbort) };
}

/** Waits `ms`; rejects with `provider_aborted` for `kind` as soon as `signal` aborts. */
export async function sleep(ms: number, signal: AbortSignal, kind: ProviderKind, clock: Clock = realClock): Promise<void> {
  try {
    await clockSleep(clock, ms, signal);
  } catch (error) {
    if (signal.aborted) throw abortedError(kind, signal.reason);
    throw error;
  }
}

/**
 * A single-consumer push queue exposed as an AsyncIterable: producers `push`, then `end` or `fail`.
 * When the consumer stops early (break / return), `onCancel` runs so the producer can stop its I/O.
 */
export class AsyncChannel<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  #error: { value: unknown } | undefined;
  #onCancel: (() => void) | undefined;

  constructor(onCancel?: () => void) {
    this.#onCancel = onCancel;
  }

  get closed(): boolean {
    return this.#done || this.#error !== undefined;
  }

  push(item: T): void {
    if (this.closed) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve({ value: item, done: false });
    } else {
      this.#items.push(item);
    }
  }

  end(): void {
    if (this.closed) return;
    this.#done = true;
    this.#settleWaiter();
  }

  fail(error: unknown): void {
    if (this.closed) return;
    this.#error = { value: error };
    this.#settleWaiter();
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (!waiter || this.#items.length > 0) return;
    this.#waiter = undefined;
    if (this.#error) waiter.reject(this.#error.value);
    else waiter.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift() as T, done: false });
        if (this.#error) {
          const { value } = this.#error;
          this.#error = undefined;
          this.#done = true;
          return Promise.reject(value);
        }
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.#waiter = { resolve, reject };
        });
      },
      return: () => {
        const wasOpen = !this.closed;
        this.#done = true;
        this.#items = [];
        if (wasOpen) this.#onCancel?.();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
