/**
 * Timeouts and retries with exponential backoff and full jitter: `withResilience`.
 *
 * Only idempotent work is retried: `transcribe`, a TTS stream before its first chunk, an LLM stream
 * before its first event, and a streaming STT call before its first transcript (the audio consumed so
 * far is replayed to the next attempt, up to `maxReplaySeconds`). Once output has reached the
 * caller, an error is passed on: repeating it would duplicate what the user already heard.
 */
import type { ProviderError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { LlmProvider, LlmRequest, PcmFloat, SttOptions, SttProvider, TtsOptions, TtsProvider } from '../types.js';
import { linkedController, sleep, type ProviderKind } from '../local/streams.js';
import { abortion, deadline, drain, startStream, type TimeoutOptions } from './deadline.js';
import { mapError } from './errors.js';
import { providerKind, type AnyProvider } from './kind.js';
import { replaySamples, withReplay } from './stt-stream.js';

export interface RetryOptions {
  /** Extra attempts after the first for retryable errors. Default 2. */
  readonly retries?: number;
  /** First backoff delay before jitter. Default 250 ms; doubles each attempt. */
  readonly minDelayMs?: number;
  /** Backoff ceiling. Default 5000 ms. */
  readonly maxDelayMs?: number;
  /** Source of randomness for the jitter (tests pass a fixed one). Default Math.random. */
  readonly random?: () => number;
}

export interface ResilienceOptions extends RetryOptions, TimeoutOptions {
  /** Streaming STT: how much consumed audio is kept to replay to a retry. Default 60 s. */
  readonly maxReplaySeconds?: number;
  readonly logger?: Logger;
}

/** Full-jitter exponential backoff: a uniform delay in [0, min(max, min * 2^attempt)]. */
export function backoffDelay(attempt: number, options: RetryOptions = {}): number {
  const min = options.minDelayMs ?? 250;
  const max = options.maxDelayMs ?? 5000;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(max, min * 2 ** attempt);
  return Math.round(min / 2 + random() * (ceiling - min / 2));
}

/** Logs a failed attempt and waits out its backoff (rejects with `provider_aborted` on abort). */
async function backOff(
  kind: ProviderKind,
  signal: AbortSignal,
  error: ProviderError,
  attempt: number,
  options: ResilienceOptions,
  name: string,
): Promise<void> {
  const delay = backoffDelay(attempt, options);
  options.logger?.warn({ provider: name, kind, code: error.code, attempt: attempt + 1, delayMs: delay }, 'provider call failed; retrying');
  await sleep(delay, signal, kind, options.clock);
}

/** Runs attempts until one yields its first item; retries retryable errors with backoff. */
async function* retryStream<T>(
  kind: ProviderKind,
  signal: AbortSignal,
  open: (signal: AbortSignal, attempt: number) => AsyncIterable<T>,
  options: ResilienceOptions,
  name: string,
  canRetry: () => boolean = () => true,
  onFirst: () => void = () => {},
): AsyncGenerator<T> {
  const retries = options.retries ?? 2;
  const timeouts: TimeoutOptions = {
    timeoutMs: options.timeoutMs ?? 15_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  };
  for (let attempt = 0; ; attempt++) {
    const stream = startStream(kind, signal, (s) => open(s, attempt), timeouts, `${name} ${kind}`);
    let result: IteratorResult<T>;
    try {
      result = await stream.next();
    } catch (error) {
      const mapped = error as ProviderError;
      if (!mapped.retryable || attempt >= retries || !canRetry()) throw mapped;
      await backOff(kind, signal, mapped, attempt, options, name);
      continue;
    }
    onFirst();
    yield* drain(stream, result);
    return;
  }
}

async function retryPromise<T>(
  kind: ProviderKind,
  signal: AbortSignal,
  call: (signal: AbortSignal) => Promise<T>,
  options: ResilienceOptions,
  name: string,
): Promise<T> {
  const retries = options.retries ?? 2;
  for (let attempt = 0; ; attempt++) {
    const { controller, dispose } = linkedController(signal);
    const timer = deadline(controller, kind, options.clock);
    timer.arm(options.timeoutMs ?? 15_000, `${name} ${kind}`);
    const aborted = abortion(signal, kind);
    try {
      return await Promise.race([call(controller.signal), timer.promise, aborted.promise]);
    } catch (error) {
      const mapped = mapError(error, kind, signal);
      if (!mapped.retryable || attempt >= retries) throw mapped;
      await backOff(kind, signal, mapped, attempt, options, name);
    } finally {
      timer.dispose();
      aborted.dispose();
      if (!controller.signal.aborted) controller.abort();
      dispose();
    }
  }
}

/**
 * Adds timeouts and retries (see the module comment for what is retried). The wrapped provider
 * keeps the inner provider's `name`.
 */
export function withResilience<P extends AnyProvider>(provider: P, options: ResilienceOptions = {}): P {
  const kind = providerKind(provider);
  const name = provider.name;
  if (kind === 'llm') {
    const llm = provider as LlmProvider;
    const wrapped: LlmProvider = {
      name,
      stream: (request: LlmRequest) =>
        retryStream('llm', request.signal, (signal) => llm.stream({ ...request, signal }), options, name),
    };
    return wrapped as P;
  }
  if (kind === 'tts') {
    const tts = provider as TtsProvider;
    const wrapped: TtsProvider = {
      name,
      synthesize: (text: string, ttsOptions: TtsOptions) =>
        retryStream('tts', ttsOptions.signal, (signal) => tts.synthesize(text, { ...ttsOptions, signal }), options, name),
    };
    return wrapped as P;
  }
  const stt = provider as SttProvider;
  const wrapped: SttProvider = {
    name,
    transcribe: (audio: PcmFloat, sttOptions: SttOptions) =>
      retryPromise('stt', sttOptions.signal, (signal) => stt.transcribe(audio, { ...sttOptions, signal }), options, name),
  };
  if (stt.stream) {
    const inner = stt.stream.bind(stt);
    const maxSamples = replaySamples(options.maxReplaySeconds);
    (wrapped as { stream?: SttProvider['stream'] }).stream = (audio, sttOptions) =>
      withReplay(audio, maxSamples, (tape) =>
        retryStream(
          'stt',
          sttOptions.signal,
          (signal) => inner(tape.read(), { ...sttOptions, signal }),
          { ...options, timeoutMs: Infinity, idleTimeoutMs: Infinity },
          name,
          () => tape.replayable,
          () => tape.stopRecording(),
        ),
      );
  }
  return wrapped as P;
}
