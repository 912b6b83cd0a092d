/**
 * Fallback between providers of one kind, with recovery after a cool-down: `fallback`.
 */
import { ProviderError } from '../../errors.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import type { LlmProvider, SttProvider, TtsProvider } from '../types.js';
import type { ProviderKind } from '../local/streams.js';
import { drain, startStream } from './deadline.js';
import { mapError } from './errors.js';
import { providerKind, type AnyProvider } from './kind.js';
import { replaySamples, sttStreamOf, withReplay } from './stt-stream.js';

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
      yield* drain(stream, result);
    } catch (error) {
      const mapped = error as ProviderError;
      if (mapped.code !== 'provider_aborted') health.failed(index, mapped);
      throw mapped;
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
    const maxSamples = replaySamples(options.maxReplaySeconds);
    (wrapped as { stream?: SttProvider['stream'] }).stream = (audio, sttOptions) =>
      withReplay(audio, maxSamples, (tape) =>
        fallbackStream(
          'stt',
          sttOptions.signal,
          health,
          (i, signal) => sttStreamOf(list[i]!, tape.read(), { ...sttOptions, signal }),
          () => tape.replayable,
          () => tape.stopRecording(),
        ),
      );
  }
  return wrapped as P;
}
