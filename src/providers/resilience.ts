/**
 * Resilience for providers: timeouts, retries with exponential backoff and full jitter, fallback
 * between providers of one kind with recovery after a cool-down, and a cap on concurrent calls.
 *
 * Each wrapper takes a provider and returns a provider of the same kind, so they compose:
 *   withConcurrency(withResilience(fallback([openai, local])), 8)
 *
 * Only idempotent work is retried: `transcribe`, a TTS stream before its first chunk, an LLM stream
 * before its first event, and a streaming STT call before its first transcript (the audio consumed so
 * far is replayed to the next attempt, up to `maxReplaySeconds`). Once output has reached the
 * caller, an error is passed on: repeating it would duplicate what the user already heard.
 */
import PQueue from 'p-queue';
import { ProviderError, isAbortError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { silentLogger } from '../observability/logger.js';
import type {
  LlmEvent,
  LlmProvider,
  LlmRequest,
  PcmFloat,
  SttOptions,
  SttProvider,
  Transcript,
  TtsChunk,
  TtsOptions,
  TtsProvider,
} from './types.js';
import { abortedError, linkedController, sleep, type ProviderKind } from './local/streams.js';

export type AnyProvider = SttProvider | LlmProvider | TtsProvider;

/** Which contract a provider implements, from its shape. */
export function providerKind(provider: AnyProvider): ProviderKind {
  if ('synthesize' in provider) return 'tts';
  if ('transcribe' in provider) return 'stt';
  return 'llm';
}

// ---------------------------------------------------------------------------------------------
// Error mapping

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Removes things that look like credentials from an upstream error message. */
export function redactSecrets(message: string): string {
  return message
    .replace(/\b(sk|pk|rk)-[A-Za-z0-9_*\-]{6,}/g, '$1-[redacted]')
    .replace(/\bAIza[0-9A-Za-z_\-]{20,}/g, '[redacted]')
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+/gi, '$1 [redacted]')
    .replace(/(\/\/)[^/@\s:]+:[^/@\s]+@/g, '$1[redacted]@');
}

/** HTTP status → provider error code and whether another attempt may succeed. */
export function httpStatusError(
  status: number,
  kind: ProviderKind,
  message: string,
  cause?: unknown,
): ProviderError {
  const options = { status, ...(cause === undefined ? {} : { cause }) };
  const text = redactSecrets(message);
  if (status === 429) return new ProviderError('provider_rate_limited', kind, text, { ...options, retryable: true });
  if (status === 401 || status === 403) return new ProviderError('provider_auth', kind, text, options);
  if (status === 408) return new ProviderError('provider_timeout', kind, text, { ...options, retryable: true });
  if (status === 502 || status === 503 || status === 504)
    return new ProviderError('provider_unavailable', kind, text, { ...options, retryable: true });
  if (status >= 500) return new ProviderError('provider_failed', kind, text, { ...options, retryable: true });
  return new ProviderError('provider_failed', kind, text, options);
}

/**
 * Turns anything a provider threw into a ProviderError. Provider modules map their SDK's errors
 * first; this handles what is left: aborts, network errors, parse errors and the unknown.
 */
export function toProviderError(error: unknown, kind: ProviderKind): ProviderError {
  if (error instanceof ProviderError) return error;
  if (isAbortError(error)) return abortedError(kind, error);
  const code = (error as { code?: unknown } | null)?.code;
  const causeCode = ((error as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code;
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  if ((typeof code === 'string' && NETWORK_CODES.has(code)) || (typeof causeCode === 'string' && NETWORK_CODES.has(causeCode)))
    return new ProviderError('provider_unavailable', kind, `network error: ${message}`, { cause: error, retryable: true });
  if (error instanceof SyntaxError)
    return new ProviderError('provider_bad_response', kind, `malformed response: ${message}`, { cause: error });
  return new ProviderError('provider_failed', kind, message, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// Timeouts and retries

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

export interface TimeoutOptions {
  /** `transcribe`: the whole call. LLM and TTS streams: until the first event. Default 15000 ms. */
  readonly timeoutMs?: number;
  /** LLM and TTS streams: the longest gap between two events after the first. Default 30000 ms. */
  readonly idleTimeoutMs?: number;
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

const TIMEOUT = Symbol('timeout');

/**
 * A re-armable deadline: when it fires it rejects `promise` with `provider_timeout` and then aborts
 * `controller` (in that order, so a race sees the timeout rather than the abort it causes).
 */
function deadline(controller: AbortController, kind: ProviderKind) {
  let timer: NodeJS.Timeout | undefined;
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<never>((_, rej) => {
    reject = rej;
  });
  promise.catch(() => {}); // only observed through races
  const arm = (ms: number | undefined, what: string): void => {
    clearTimeout(timer);
    if (ms === undefined || ms <= 0 || !Number.isFinite(ms)) return;
    timer = setTimeout(() => {
      reject(new ProviderError('provider_timeout', kind, `${what} took longer than ${ms} ms`, { retryable: true }));
      controller.abort(TIMEOUT);
    }, ms);
  };
  return { promise, arm, dispose: () => clearTimeout(timer) };
}

/** Rejects with `provider_aborted` when `signal` aborts. */
function abortion(signal: AbortSignal, kind: ProviderKind): { promise: Promise<never>; dispose: () => void } {
  let onAbort = (): void => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(kind, signal.reason));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

function mapError(error: unknown, kind: ProviderKind, callerSignal: AbortSignal): ProviderError {
  if (callerSignal.aborted) return abortedError(kind, error);
  return toProviderError(error, kind);
}

/** One attempt of a streaming call: it yields to the caller only after the first item arrived. */
interface StreamAttempt<T> {
  /** Next item, already raced against the caller's abort and the timeouts. */
  next(): Promise<IteratorResult<T>>;
  close(): Promise<void>;
}

function startStream<T>(
  kind: ProviderKind,
  signal: AbortSignal,
  open: (signal: AbortSignal) => AsyncIterable<T>,
  timeouts: TimeoutOptions,
  what: string,
): StreamAttempt<T> {
  const { controller, dispose } = linkedController(signal);
  const timer = deadline(controller, kind);
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
  };
  for (let attempt = 0; ; attempt++) {
    const stream = startStream(kind, signal, (s) => open(s, attempt), timeouts, `${name} ${kind}`);
    let result: IteratorResult<T>;
    try {
      result = await stream.next();
    } catch (error) {
      const mapped = error as ProviderError;
      if (!mapped.retryable || attempt >= retries || !canRetry()) throw mapped;
      const delay = backoffDelay(attempt, options);
      options.logger?.warn({ provider: name, kind, code: mapped.code, attempt: attempt + 1, delayMs: delay }, 'provider call failed; retrying');
      await sleep(delay, signal, kind);
      continue;
    }
    onFirst();
    try {
      while (!result.done) {
        yield result.value;
        result = await stream.next();
      }
    } finally {
      await stream.close();
    }
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
    const timer = deadline(controller, kind);
    timer.arm(options.timeoutMs ?? 15_000, `${name} ${kind}`);
    const aborted = abortion(signal, kind);
    try {
      return await Promise.race([call(controller.signal), timer.promise, aborted.promise]);
    } catch (error) {
      const mapped = mapError(error, kind, signal);
      if (!mapped.retryable || attempt >= retries) throw mapped;
      const delay = backoffDelay(attempt, options);
      options.logger?.warn({ provider: name, kind, code: mapped.code, attempt: attempt + 1, delayMs: delay }, 'provider call failed; retrying');
      await sleep(delay, signal, kind);
    } finally {
      timer.dispose();
      aborted.dispose();
      if (!controller.signal.aborted) controller.abort();
      dispose();
    }
  }
}

/**
 * Audio that a streaming STT call consumed, kept so that another attempt (a retry, or the next
 * provider of a fallback) can hear the utterance from its start. Recording stops at the first
 * transcript or after `maxSamples`; from then on there is nothing left to replay.
 */
class AudioTape {
  readonly #source: AsyncIterator<Float32Array>;
  readonly #maxSamples: number;
  #recorded: Float32Array[] = [];
  #samples = 0;
  #recording = true;
  #ended = false;
  #pending: Promise<void> | undefined;
  #reader = 0;

  constructor(source: AsyncIterable<Float32Array>, maxSamples: number) {
    this.#source = source[Symbol.asyncIterator]();
    this.#maxSamples = maxSamples;
  }

  /** True while every consumed chunk is still recorded. */
  get replayable(): boolean {
    return this.#recording;
  }

  stopRecording(): void {
    this.#recording = false;
  }

  /** A fresh reader from the start of the recording; older readers stop. */
  async *read(): AsyncGenerator<Float32Array> {
    const id = ++this.#reader;
    let index = 0;
    while (id === this.#reader) {
      if (index < this.#recorded.length) {
        const chunk = this.#recorded[index++];
        if (chunk) yield chunk;
        continue;
      }
      if (!this.#recording && this.#recorded.length > 0) {
        this.#recorded = [];
        index = 0;
      }
      if (this.#ended) return;
      await this.#pull();
    }
  }

  #pull(): Promise<void> {
    this.#pending ??= this.#source.next().then(
      (result) => {
        this.#pending = undefined;
        if (result.done) {
          this.#ended = true;
          return;
        }
        this.#recorded.push(result.value);
        this.#samples += result.value.length;
        if (this.#samples > this.#maxSamples) this.#recording = false;
      },
      (error: unknown) => {
        this.#pending = undefined;
        throw error;
      },
    );
    return this.#pending;
  }

  async close(): Promise<void> {
    this.#reader++;
    this.#recorded = [];
    await this.#source.return?.();
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
    const maxSamples = (options.maxReplaySeconds ?? 60) * 16_000;
    (wrapped as { stream?: SttProvider['stream'] }).stream = (audio, sttOptions) =>
      (async function* () {
        const tape = new AudioTape(audio, maxSamples);
        try {
          yield* retryStream(
            'stt',
            sttOptions.signal,
            (signal) => inner(tape.read(), { ...sttOptions, signal }),
            { ...options, timeoutMs: Infinity, idleTimeoutMs: Infinity },
            name,
            () => tape.replayable,
            () => tape.stopRecording(),
          );
        } finally {
          await tape.close();
        }
      })();
  }
  return wrapped as P;
}

// ---------------------------------------------------------------------------------------------
// Fallback

export interface FallbackOptions {
  /** How long a failed provider is skipped before it is tried again. Default 30000 ms. */
  readonly cooldownMs?: number;
  /** Streaming STT: how much consumed audio is kept to replay to the next provider. Default 60 s. */
  readonly maxReplaySeconds?: number;
  readonly logger?: Logger;
  /** Clock, for tests. Default Date.now. */
  readonly now?: () => number;
}

/** Picks the first healthy provider; a failed one sits out `cooldownMs`, then gets another chance. */
class Health {
  readonly #downUntil: number[];
  readonly #names: readonly string[];
  readonly #cooldownMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #kind: ProviderKind;

  constructor(names: readonly string[], kind: ProviderKind, options: FallbackOptions) {
    this.#names = names;
    this.#kind = kind;
    this.#downUntil = names.map(() => 0);
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#logger = options.logger ?? silentLogger();
    this.#now = options.now ?? Date.now;
  }

  /** Indices to try, healthy ones first in configured order, then the cooling ones. */
  order(): number[] {
    const now = this.#now();
    const healthy = this.#downUntil.flatMap((until, i) => (until <= now ? [i] : []));
    const cooling = this.#downUntil.flatMap((until, i) => (until > now ? [i] : []));
    return [...healthy, ...cooling];
  }

  failed(index: number, error: ProviderError): void {
    const wasUp = (this.#downUntil[index] ?? 0) <= this.#now();
    this.#downUntil[index] = this.#now() + this.#cooldownMs;
    if (wasUp)
      this.#logger.warn(
        { kind: this.#kind, provider: this.#names[index], code: error.code, cooldownMs: this.#cooldownMs },
        'provider failed; using the next one',
      );
  }

  succeeded(index: number): void {
    if ((this.#downUntil[index] ?? 0) === 0) return;
    this.#downUntil[index] = 0;
    this.#logger.info({ kind: this.#kind, provider: this.#names[index] }, 'provider recovered');
  }
}

async function* fallbackStream<T>(
  kind: ProviderKind,
  signal: AbortSignal,
  health: Health,
  open: (index: number, signal: AbortSignal) => AsyncIterable<T>,
  canSwitch: () => boolean = () => true,
  onFirst: () => void = () => {},
): AsyncGenerator<T> {
  let lastError: ProviderError | undefined;
  for (const index of health.order()) {
    if (lastError && !canSwitch()) break;
    const stream = startStream(kind, signal, (s) => open(index, s), {}, 'fallback');
    let result: IteratorResult<T>;
    try {
      result = await stream.next();
    } catch (error) {
      lastError = error as ProviderError;
      if (lastError.code === 'provider_aborted') throw lastError;
      health.failed(index, lastError);
      continue;
    }
    health.succeeded(index);
    onFirst();
    try {
      while (!result.done) {
        yield result.value;
        result = await stream.next();
      }
    } catch (error) {
      const mapped = error as ProviderError;
      if (mapped.code !== 'provider_aborted') health.failed(index, mapped);
      throw mapped;
    } finally {
      await stream.close();
    }
    return;
  }
  throw lastError ?? new ProviderError('provider_unavailable', kind, 'no provider to fall back on');
}

/**
 * Tries the providers in order. A provider that fails is skipped for `cooldownMs` and the call
 * goes to the next one (before any output reached the caller); after the cool-down the earlier
 * provider is tried first again, so the chain recovers by itself. Aborts are never "failures".
 */
export function fallback<P extends AnyProvider>(providers: readonly [P, ...P[]], options: FallbackOptions = {}): P {
  const kind = providerKind(providers[0]);
  for (const p of providers)
    if (providerKind(p) !== kind) throw new TypeError(`fallback(): ${p.name} is not a ${kind} provider`);
  const names = providers.map((p) => p.name);
  const name = names.join('|');
  const health = new Health(names, kind, options);
  if (kind === 'llm') {
    const list = providers as readonly LlmProvider[];
    const wrapped: LlmProvider = {
      name,
      stream: (request) => fallbackStream('llm', request.signal, health, (i, signal) => list[i]!.stream({ ...request, signal })),
    };
    return wrapped as P;
  }
  if (kind === 'tts') {
    const list = providers as readonly TtsProvider[];
    const wrapped: TtsProvider = {
      name,
      synthesize: (text, ttsOptions) =>
        fallbackStream('tts', ttsOptions.signal, health, (i, signal) => list[i]!.synthesize(text, { ...ttsOptions, signal })),
    };
    return wrapped as P;
  }
  const list = providers as readonly SttProvider[];
  const wrapped: SttProvider = {
    name,
    async transcribe(audio, sttOptions) {
      let lastError: ProviderError | undefined;
      for (const index of health.order()) {
        try {
          const transcript = await list[index]!.transcribe(audio, sttOptions);
          health.succeeded(index);
          return transcript;
        } catch (error) {
          lastError = mapError(error, 'stt', sttOptions.signal);
          if (lastError.code === 'provider_aborted') throw lastError;
          health.failed(index, lastError);
        }
      }
      throw lastError ?? new ProviderError('provider_unavailable', 'stt', 'no provider to fall back on');
    },
  };
  if (list.some((p) => p.stream)) {
    const maxSamples = (options.maxReplaySeconds ?? 60) * 16_000;
    (wrapped as { stream?: SttProvider['stream'] }).stream = (audio, sttOptions) =>
      (async function* () {
        const tape = new AudioTape(audio, maxSamples);
        try {
          yield* fallbackStream(
            'stt',
            sttOptions.signal,
            health,
            (i, signal) => sttStreamOf(list[i]!, tape.read(), { ...sttOptions, signal }),
            () => tape.replayable,
            () => tape.stopRecording(),
          );
        } finally {
          await tape.close();
        }
      })();
  }
  return wrapped as P;
}

/** Streaming STT for any STT provider: batch-only ones transcribe once the audio has ended. */
export async function* sttStreamOf(
  provider: SttProvider,
  audio: AsyncIterable<Float32Array>,
  options: SttOptions,
): AsyncGenerator<Transcript> {
  if (provider.stream) {
    yield* provider.stream(audio, options);
    return;
  }
  const chunks: Float32Array[] = [];
  let length = 0;
  for await (const chunk of audio) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const samples = new Float32Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    samples.set(chunk, offset);
    offset += chunk.length;
  }
  yield await provider.transcribe({ samples, sampleRate: 16_000 }, options);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

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
