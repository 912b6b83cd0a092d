/**
 * Scripted providers with controllable latency, chunking and failure. They speak the real
 * contracts of ../types.ts, honour AbortSignal, and run on any Clock (virtual time in tests and
 * simulations, real time in `npm start` demos and benchmarks).
 */
import { type Clock, realClock, sleep } from '../../clock.js';
import { ProviderError } from '../../errors.js';
import type {
  ChatMessage,
  LlmEvent,
  LlmProvider,
  LlmRequest,
  PcmFloat,
  SttOptions,
  SttProvider,
  ToolCall,
  Transcript,
  TtsChunk,
  TtsOptions,
  TtsProvider,
  WordTiming,
} from '../types.js';
import { CallLedger, type CallRecord } from './ledger.js';

export { CallLedger } from './ledger.js';
export type { CallKind, CallOutcome, CallRecord } from './ledger.js';

/**
 * Decides, per call number (1-based), whether and how a fake fails that call: `true` / `'start'`
 * before any output, `'midstream'` after its first chunk (streams; STT fails at the start), `'hang'`
 * never answers until aborted (a timeout — `withResilience` — or the caller must end it).
 */
export type FailurePlan = (call: number) => boolean | 'start' | 'midstream' | 'hang';

const never: FailurePlan = () => false;

/** Waits until `signal` aborts (a provider that hangs). */
function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const stop = (): void => reject(Object.assign(new Error('aborted while hanging'), { name: 'AbortError' }));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
}

interface FakeCommon {
  readonly clock?: Clock;
  readonly ledger?: CallLedger;
  readonly fail?: FailurePlan;
}

async function tracked<T>(
  ledger: CallLedger,
  kind: 'stt' | 'llm' | 'tts',
  signal: AbortSignal,
  body: (record: CallRecord) => Promise<T>,
): Promise<T> {
  const record = ledger.begin(kind);
  try {
    const value = await body(record);
    ledger.end(record, 'completed');
    return value;
  } catch (error) {
    ledger.end(record, signal.aborted ? 'aborted' : 'failed');
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------

export interface FakeSttOptions extends FakeCommon {
  /** What the audio "says". Simulations register the text of each utterance they play. */
  readonly recognize: (audio: PcmFloat) => string;
  readonly latencyMs?: number | ((call: number) => number);
}

export class FakeStt implements SttProvider {
  readonly name = 'fake-stt';
  readonly ledger: CallLedger;
  #options: FakeSttOptions;
  #clock: Clock;
  #calls = 0;

  constructor(options: FakeSttOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.ledger = options.ledger ?? new CallLedger(() => this.#clock.now());
  }

  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    const call = ++this.#calls;
    return tracked(this.ledger, 'stt', options.signal, async () => {
      const latency = this.#options.latencyMs;
      await sleep(this.#clock, typeof latency === 'function' ? latency(call) : (latency ?? 0), options.signal);
      const plan = (this.#options.fail ?? never)(call);
      if (plan === 'hang') await hang(options.signal);
      if (plan !== false) throw new ProviderError('provider_failed', 'stt', `fake STT failure on call ${call}`);
      return { text: this.#options.recognize(audio), final: true };
    });
  }
}

// ---------------------------------------------------------------------------------------------

/** One step of a scripted LLM reply: text to stream, or a tool call to make. */
export type LlmScriptStep = string | { readonly toolCall: Omit<ToolCall, 'id'> & { readonly id?: string } };

export interface FakeLlmOptions extends FakeCommon {
  /** The reply to a conversation. Called once per completion (tool rounds call it again). */
  readonly respond: (messages: readonly ChatMessage[]) => readonly LlmScriptStep[];
  readonly firstTokenMs?: number | ((call: number) => number);
  readonly tokenIntervalMs?: number;
  /** Text steps are split into chunks of about this many characters (default: whole words). */
  readonly chunkChars?: number;
}

export class FakeLlm implements LlmProvider {
  readonly name = 'fake-llm';
  readonly ledger: CallLedger;
  /** The messages each completion was asked with, in order. */
  readonly requests: (readonly ChatMessage[])[] = [];
  /** Every request whole (tools, per-request settings), beside `requests` (its messages). */
  readonly calls: Omit<LlmRequest, 'signal'>[] = [];
  #options: FakeLlmOptions;
  #clock: Clock;
  #calls = 0;

  constructor(options: FakeLlmOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.ledger = options.ledger ?? new CallLedger(() => this.#clock.now());
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const call = ++this.#calls;
    this.requests.push(request.messages);
    const { signal: _signal, ...whole } = request;
    this.calls.push(whole);
    const record = this.ledger.begin('llm');
    const { signal } = request;
    try {
      const first = this.#options.firstTokenMs;
      await sleep(this.#clock, typeof first === 'function' ? first(call) : (first ?? 0), signal);
      const plan = (this.#options.fail ?? never)(call);
      if (plan === 'hang') await hang(signal);
      if (plan === true || plan === 'start') throw new ProviderError('provider_failed', 'llm', `fake LLM failure on call ${call}`);
      const steps = this.#options.respond(request.messages);
      let toolIndex = 0;
      let outputChars = 0;
      let firstChunk = true;
      for (const step of steps) {
        if (typeof step === 'string') {
          for (const chunk of chunkText(step, this.#options.chunkChars)) {
            if (!firstChunk) await sleep(this.#clock, this.#options.tokenIntervalMs ?? 0, signal);
            firstChunk = false;
            outputChars += chunk.length;
            yield { type: 'text', text: chunk };
            if (plan === 'midstream') throw new ProviderError('provider_failed', 'llm', `fake LLM failure during call ${call}`);
          }
        } else {
          const id = step.toolCall.id ?? `call_${call}_${toolIndex++}`;
          yield { type: 'tool_call', call: { id, name: step.toolCall.name, arguments: step.toolCall.arguments } };
        }
      }
      const inputChars = request.messages.reduce((sum, m) => sum + m.content.length, 0);
      yield { type: 'usage', usage: { inputTokens: Math.ceil(inputChars / 4), outputTokens: Math.ceil(outputChars / 4) } };
      this.ledger.end(record, 'completed');
    } catch (error) {
      this.ledger.end(record, signal.aborted ? 'aborted' : 'failed');
      throw error;
    } finally {
      // A consumer that stops iterating early (break/return) also ends the call.
      this.ledger.end(record, signal.aborted ? 'aborted' : 'completed');
    }
  }
}

function chunkText(text: string, chunkChars: number | undefined): string[] {
  if (text === '') return [];
  if (chunkChars !== undefined && chunkChars > 0) {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += chunkChars) chunks.push(text.slice(i, i + chunkChars));
    return chunks;
  }
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

// ---------------------------------------------------------------------------------------------

const TONE_HZ = 200;
const tones = new Map<number, Int16Array>();

/** `length` samples of a quiet 200 Hz tone starting at sample `offset` (one period cached per rate). */
function toneSlice(rate: number, offset: number, length: number): Int16Array {
  let period = tones.get(rate);
  if (period === undefined) {
    // Whole periods that fit a 100 ms window, so consecutive slices join without a click.
    const samples = Math.round(rate / 10);
    period = new Int16Array(samples);
    for (let i = 0; i < samples; i++) period[i] = Math.round(3000 * Math.sin((2 * Math.PI * TONE_HZ * i) / rate));
    tones.set(rate, period);
  }
  const out = new Int16Array(length);
  for (let written = 0; written < length; ) {
    const start = (offset + written) % period.length;
    const count = Math.min(length - written, period.length - start);
    out.set(period.subarray(start, start + count), written);
    written += count;
  }
  return out;
}

export interface FakeTtsOptions extends FakeCommon {
  /** Audio per word, in ms (default 200). Every word gets exactly this long, so tests can predict timings. */
  readonly msPerWord?: number;
  readonly sampleRate?: number;
  /** Size of the PCM chunks yielded, in ms of audio (default 100). */
  readonly chunkMs?: number;
  readonly firstChunkMs?: number | ((call: number) => number);
  /** Delay between chunks (default 0: synthesis is instantaneous after the first chunk). */
  readonly chunkIntervalMs?: number;
}

export class FakeTts implements TtsProvider {
  readonly name = 'fake-tts';
  readonly ledger: CallLedger;
  readonly texts: string[] = [];
  #options: FakeTtsOptions;
  #clock: Clock;
  #calls = 0;

  constructor(options: FakeTtsOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.ledger = options.ledger ?? new CallLedger(() => this.#clock.now());
  }

  get sampleRate(): number {
    return this.#options.sampleRate ?? 24_000;
  }

  async *synthesize(text: string, options: TtsOptions): AsyncIterable<TtsChunk> {
    const call = ++this.#calls;
    this.texts.push(text);
    const record = this.ledger.begin('tts');
    const { signal } = options;
    try {
      const first = this.#options.firstChunkMs;
      await sleep(this.#clock, typeof first === 'function' ? first(call) : (first ?? 0), signal);
      const plan = (this.#options.fail ?? never)(call);
      if (plan === 'hang') await hang(signal);
      if (plan === true || plan === 'start') throw new ProviderError('provider_failed', 'tts', `fake TTS failure on call ${call}`);
      const msPerWord = this.#options.msPerWord ?? 200;
      const rate = this.sampleRate;
      const words = text.split(/\s+/).filter((w) => w.length > 0);
      const timings: WordTiming[] = words.map((word, i) => ({ word, startMs: i * msPerWord, endMs: (i + 1) * msPerWord }));
      const totalSamples = Math.round((words.length * msPerWord * rate) / 1000);
      const chunkSamples = Math.max(1, Math.round(((this.#options.chunkMs ?? 100) * rate) / 1000));
      for (let offset = 0, n = 0; offset < totalSamples; offset += chunkSamples, n++) {
        if (n > 0) await sleep(this.#clock, this.#options.chunkIntervalMs ?? 0, signal);
        const length = Math.min(chunkSamples, totalSamples - offset);
        const pcm = toneSlice(rate, offset, length);
        yield offset === 0 ? { pcm, sampleRate: rate, words: timings } : { pcm, sampleRate: rate };
        if (plan === 'midstream') throw new ProviderError('provider_failed', 'tts', `fake TTS failure during call ${call}`);
      }
      this.ledger.end(record, 'completed');
    } catch (error) {
      this.ledger.end(record, signal.aborted ? 'aborted' : 'failed');
      throw error;
    } finally {
      this.ledger.end(record, signal.aborted ? 'aborted' : 'completed');
    }
  }
}
