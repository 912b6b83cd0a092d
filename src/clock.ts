/**
 * Time as voxstate sees it. Everything that waits (playout pacing, fake provider latency, machine
 * delays) goes through a Clock so whole sessions can run in virtual time in tests and benchmarks.
 * The shape is a superset of XState's `Clock`, so the same object is passed to `createActor`.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error('The operation was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/**
 * Waits `ms` on `clock`; rejects with an AbortError as soon as `signal` aborts. A wait of 0 ms
 * takes no timer at all (Node rounds setTimeout(0) up to 1 ms, which would distort "instant").
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (!(ms > 0)) return signal?.aborted ? Promise.reject(abortError(signal)) : Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
