/**
 * Server-wide caps on concurrent provider calls, one per kind (`providers.limits` of a VoiceServer):
 * every session's calls of a kind share one p-queue. A call over the cap waits its turn; while it
 * waits it can leave at once — its signal aborts (a barge-in, a discarded speculation, a closed
 * session) or it waited longer than `queueTimeoutMs` (`provider_timeout`) — so a cancelled turn
 * never holds a place, in the queue or in a slot. A stream holds its slot until it ends, its
 * consumer stops, or its signal aborts.
 *
 * Applied once, to the providers the server was given, before any session exists: all sessions
 * then call the same wrapped providers (src/server/voice-server.ts).
 */
import PQueue, { type Queue, type QueueAddOptions } from 'p-queue';
import { type Clock, realClock } from '../clock.js';
import { ConfigError, ProviderError } from '../errors.js';
import { abortedError, type ProviderKind } from './local/streams.js';
import type { LlmProvider, PcmFloat, Providers, SttOptions, SttProvider, SttStreamOptions, Transcript, TtsProvider } from './types.js';

export interface ProviderLimits {
  /** Speech-to-text calls (batch `transcribe` and streams) running at once, server-wide. Default: no limit. */
  readonly stt?: number;
  /** LLM completions streaming at once. Default: no limit. */
  readonly llm?: number;
  /** TTS syntheses streaming at once. Default: no limit. */
  readonly tts?: number;
  /**
   * Longest a call waits for a slot before it fails with `provider_timeout`. Default 15 000 ms: the
   * first-event timeout of `withResilience`, so a queued call waits no longer than an unanswered one.
   */
  readonly queueTimeoutMs?: number;
}

export const DEFAULT_QUEUE_TIMEOUT_MS = 15_000;

export interface LimitOptions {
  /** A call got its slot or gave up waiting (timed out): how long it waited, in seconds. Aborted waits are not reported. */
  readonly onQueued?: (kind: ProviderKind, provider: string, seconds: number) => void;
  /** Where queue timeouts run. Default real time. */
  readonly clock?: Clock;
}

type RunFunction = () => Promise<unknown>;

/**
 * p-queue's queue, first in first out, from which a waiting entry can be withdrawn. p-queue's own
 * `signal` option only drops an aborted task when its turn comes; until then it stays queued.
 */
class WithdrawableQueue implements Queue<RunFunction, QueueAddOptions> {
  readonly #items: { readonly id: string; readonly run: RunFunction }[] = [];

  get size(): number {
    return this.#items.length;
  }

  enqueue(run: RunFunction, options?: Partial<QueueAddOptions>): void {
    this.#items.push({ id: options?.id ?? '', run });
  }

  dequeue(): RunFunction | undefined {
    return this.#items.shift()?.run;
  }

  filter(): RunFunction[] {
    return this.#items.map((item) => item.run);
  }

  setPriority(): void {
    throw new TypeError('provider call queues have no priorities');
  }

  /** Removes the entry `id` if it is still waiting. */
  withdraw(id: string): boolean {
    const index = this.#items.findIndex((item) => item.id === id);
    if (index === -1) return false;
    this.#items.splice(index, 1);
    return true;
  }
}

/** A slot of a gate, held by one call: release it once (more calls are harmless). */
type Release = () => void;

/** The slots of one kind: `limit` calls at once, the rest waiting in order. */
export class CallGate {
  readonly kind: ProviderKind;
  readonly limit: number;
  readonly #queue: PQueue<WithdrawableQueue, QueueAddOptions>;
  readonly #waiting: WithdrawableQueue;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #onQueued: LimitOptions['onQueued'];
  #ids = 0;

  constructor(kind: ProviderKind, limit: number, timeoutMs: number, options: LimitOptions = {}) {
    this.kind = kind;
    this.limit = limit;
    this.#timeoutMs = timeoutMs;
    this.#clock = options.clock ?? realClock;
    this.#onQueued = options.onQueued;
    // p-queue makes its queue itself: the subclass hands the instance back so entries can be withdrawn.
    let made: WithdrawableQueue | undefined;
    class Bound extends WithdrawableQueue {
      constructor() {
        super();
        made = this;
      }
    }
    this.#queue = new PQueue<WithdrawableQueue, QueueAddOptions>({ concurrency: limit, queueClass: Bound });
    this.#waiting = made as unknown as WithdrawableQueue;
  }

  /** Calls holding a slot. */
  get running(): number {
    return this.#queue.pending;
  }

  /** Calls waiting for one. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Waits for a slot. Rejects with `provider_aborted` as soon as `signal` aborts and with
   * `provider_timeout` after `queueTimeoutMs`; either way the call leaves the queue at once. Once
   * granted, the slot is also given back when `signal` aborts, so an abandoned call that its
   * provider is slow to stop does not hold it.
   */
  acquire(signal: AbortSignal, provider: string): Promise<Release> {
    if (signal.aborted) return Promise.reject(abortedError(this.kind, signal.reason));
    const clock = this.#clock;
    const since = clock.now();
    const id = String(++this.#ids);
    return new Promise<Release>((resolve, reject) => {
      let timer: unknown;
      const stopWaiting = (): void => {
        signal.removeEventListener('abort', onAbort);
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
      };
      const leave = (error: ProviderError): boolean => {
        if (!this.#waiting.withdraw(id)) return false;
        stopWaiting();
        reject(error);
        return true;
      };
      const onAbort = (): void => {
        leave(abortedError(this.kind, signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(this.#timeoutMs) && this.#timeoutMs > 0) {
        timer = clock.setTimeout(() => {
          timer = undefined;
          const error = new ProviderError('provider_timeout', this.kind, `no free ${this.kind} slot within ${this.#timeoutMs} ms (at most ${this.limit} calls at once)`, { retryable: true });
          if (leave(error)) this.#onQueued?.(this.kind, provider, (clock.now() - since) / 1000);
        }, this.#timeoutMs);
      }
      this.#queue
        .add(
          () =>
            new Promise<void>((free) => {
              stopWaiting();
              let held = true;
              const release = (): void => {
                if (!held) return;
                held = false;
                signal.removeEventListener('abort', release);
                free();
              };
              signal.addEventListener('abort', release, { once: true });
              this.#onQueued?.(this.kind, provider, (clock.now() - since) / 1000);
              resolve(release);
            }),
          { id },
        )
        // A withdrawn entry's promise never settles; a started one only resolves.
        .catch(() => {});
    });
  }
}

/** Runs a stream inside a slot of `gate`, released however the stream ends. */
async function* gated<T>(gate: CallGate, provider: string, signal: AbortSignal, open: () => AsyncIterable<T>): AsyncGenerator<T> {
  const release = await gate.acquire(signal, provider);
  try {
    yield* open();
  } finally {
    release();
  }
}

function limitOf(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(field, `must be a positive integer, got ${String(value)}`);
  return value;
}

/** The gates of `limits` (one per limited kind). Throws ConfigError on a bad value. */
export function createGates(limits: ProviderLimits | undefined, options: LimitOptions = {}): Partial<Record<ProviderKind, CallGate>> {
  if (limits === undefined) return {};
  const timeoutMs = limits.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
  if (!(timeoutMs >= 0) || Number.isNaN(timeoutMs)) throw new ConfigError('providers.limits.queueTimeoutMs', `must be a number >= 0, got ${String(timeoutMs)}`);
  const gates: Partial<Record<ProviderKind, CallGate>> = {};
  for (const kind of ['stt', 'llm', 'tts'] as const) {
    const limit = limitOf(`providers.limits.${kind}`, limits[kind]);
    if (limit !== undefined) gates[kind] = new CallGate(kind, limit, timeoutMs === 0 ? Number.POSITIVE_INFINITY : timeoutMs, options);
  }
  return gates;
}

function limitLlm(llm: LlmProvider, gate: CallGate): LlmProvider {
  const model = (llm as { model?: unknown }).model;
  return {
    name: llm.name,
    // Kept: instrumentation labels calls with the provider's model.
    ...(typeof model === 'string' ? { model } : {}),
    stream: (request) => gated(gate, llm.name, request.signal, () => llm.stream(request)),
  } as LlmProvider;
}

function limitTts(tts: TtsProvider, gate: CallGate): TtsProvider {
  return { name: tts.name, synthesize: (text, options) => gated(gate, tts.name, options.signal, () => tts.synthesize(text, options)) };
}

function limitStt(stt: SttProvider, gate: CallGate): SttProvider {
  const transcribe = async (audio: PcmFloat, options: SttOptions): Promise<Transcript> => {
    const release = await gate.acquire(options.signal, stt.name);
    try {
      return await stt.transcribe(audio, options);
    } finally {
      release();
    }
  };
  const stream = stt.stream?.bind(stt);
  if (stream === undefined) return { name: stt.name, transcribe };
  return {
    name: stt.name,
    transcribe,
    stream: (audio: AsyncIterable<Float32Array>, options: SttStreamOptions) => gated(gate, stt.name, options.signal, () => stream(audio, options)),
  };
}

/**
 * The providers with `limits` applied (kinds without a limit are passed through untouched). Call it
 * once per server: the gates are made here, and every session must share them.
 */
export function limitProviders(providers: Providers, limits: ProviderLimits | undefined, options: LimitOptions = {}): Providers {
  const gates = createGates(limits, options);
  return {
    stt: gates.stt === undefined ? providers.stt : limitStt(providers.stt, gates.stt),
    llm: gates.llm === undefined ? providers.llm : limitLlm(providers.llm, gates.llm),
    tts: gates.tts === undefined ? providers.tts : limitTts(providers.tts, gates.tts),
  };
}
