/**
 * A cap on concurrent calls: `withConcurrency`.
 */
import PQueue from 'p-queue';
import type { LlmProvider, SttProvider, TtsProvider } from '../types.js';
import { abortedError } from '../local/streams.js';
import { providerKind, type AnyProvider } from './kind.js';

/**
 * Caps how many calls run at once against `provider` (a stream holds its slot until it ends or is
 * abandoned). Calls over the cap wait in a p-queue; a waiting call that is aborted leaves the queue.
 */
export function withConcurrency<P extends AnyProvider>(provider: P, concurrency: number): P {
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`withConcurrency(): concurrency must be a positive integer, got ${concurrency}`);
  const queue = new PQueue({ concurrency });
  const kind = providerKind(provider);
  const name = provider.name;

  const acquire = (signal: AbortSignal): Promise<() => void> =>
    new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(abortedError(kind, signal.reason));
        return;
      }
      let settled = false;
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        reject(abortedError(kind, signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queue
        .add(
          () =>
            new Promise<void>((release) => {
              signal.removeEventListener('abort', onAbort);
              if (settled) {
                release();
                return;
              }
              settled = true;
              resolve(release);
            }),
        )
        // p-queue's own `signal` option is not used: it leaves a listener on the caller's signal
        // per call. A call aborted while queued is rejected by onAbort and releases its turn at once.
        .catch(() => {});
    });

  async function* gated<T>(signal: AbortSignal, open: () => AsyncIterable<T>): AsyncGenerator<T> {
    const release = await acquire(signal);
    try {
      yield* open();
    } finally {
      release();
    }
  }

  if (kind === 'llm') {
    const llm = provider as LlmProvider;
    const wrapped: LlmProvider = { name, stream: (request) => gated(request.signal, () => llm.stream(request)) };
    return wrapped as P;
  }
  if (kind === 'tts') {
    const tts = provider as TtsProvider;
    const wrapped: TtsProvider = {
      name,
      synthesize: (text, options) => gated(options.signal, () => tts.synthesize(text, options)),
    };
    return wrapped as P;
  }
  const stt = provider as SttProvider;
  const wrapped: SttProvider = {
    name,
    async transcribe(audio, options) {
      const release = await acquire(options.signal);
      try {
        return await stt.transcribe(audio, options);
      } finally {
        release();
      }
    },
  };
  if (stt.stream) {
    const inner = stt.stream.bind(stt);
    (wrapped as { stream?: SttProvider['stream'] }).stream = (audio, options) =>
      gated(options.signal, () => inner(audio, options));
  }
  return wrapped as P;
}
