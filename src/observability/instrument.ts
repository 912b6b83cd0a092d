/**
 * Provider calls as records: which provider, when the call started, when its first result came,
 * how it ended. `instrumentProviders` wraps a session's providers so that every call is reported
 * to an observer (metrics count them, the tracer turns them into spans). The wrappers pass every
 * argument and every result through unchanged; a provider without `stt.stream` stays without it.
 *
 * The first result of a call, by kind:
 *   llm  the first text delta or tool call
 *   tts  the first audio chunk
 *   stt  batch `transcribe`: its answer; `stream`: the end of the results after the audio ended
 *        (the turn's audio ends at the end-of-turn decision; the stream then finishes its last segment)
 */
import { isAbortError, isVoxError } from '../errors.js';
import type { LlmEvent, LlmProvider, LlmRequest, PcmFloat, Providers, SttOptions, SttProvider, SttStreamOptions, Transcript, TtsChunk, TtsOptions, TtsProvider } from '../providers/types.js';

export type ProviderKind = 'stt' | 'llm' | 'tts';
export type CallOutcome = 'completed' | 'aborted' | 'failed';

/** One provider call. Times are in ms of the `now` clock given to instrumentProviders. */
export interface ProviderCall {
  readonly kind: ProviderKind;
  /** The provider's `name`. */
  readonly provider: string;
  /** LLM: the request's model, else the provider's `model` property when it has one. */
  readonly model: string | undefined;
  /** STT: a `stream()` call (otherwise `transcribe`). */
  readonly streaming: boolean;
  readonly startedAt: number;
  /** When the first result came (see the file comment); undefined if none did. */
  firstAt: number | undefined;
  /** STT stream: when its audio ended. */
  audioEndedAt: number | undefined;
  endedAt: number | undefined;
  outcome: CallOutcome | undefined;
  /** The error code of a failed call (the VoxError's, else `provider_failed`). */
  errorCode: string | undefined;
  /** LLM: tokens, when the provider reported them. */
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  /** LLM: tool calls the model made. */
  toolCalls: number;
  /** STT: the final text; TTS: the text spoken. Only a tracer with `traceContent` exports it. */
  text: string | undefined;
}

/** Milliseconds from the start of a call (the end of its audio, for an STT stream) to its first result. */
export function firstResultMs(call: ProviderCall): number | undefined {
  if (call.firstAt === undefined) return undefined;
  const from = call.streaming ? call.audioEndedAt : call.startedAt;
  return from === undefined ? undefined : Math.max(0, call.firstAt - from);
}

export interface ProviderObserver {
  /** A call began. */
  readonly started?: (call: ProviderCall) => void;
  /** A call ended (its record is complete). */
  readonly ended?: (call: ProviderCall) => void;
}

function begin(kind: ProviderKind, provider: string, model: string | undefined, streaming: boolean, now: number): ProviderCall {
  return {
    kind,
    provider,
    model,
    streaming,
    startedAt: now,
    firstAt: undefined,
    audioEndedAt: undefined,
    endedAt: undefined,
    outcome: undefined,
    errorCode: undefined,
    inputTokens: undefined,
    outputTokens: undefined,
    toolCalls: 0,
    text: undefined,
  };
}

function failure(error: unknown, signal: AbortSignal): { outcome: CallOutcome; code: string | undefined } {
  if (signal.aborted || isAbortError(error)) return { outcome: 'aborted', code: undefined };
  return { outcome: 'failed', code: isVoxError(error) ? error.code : 'provider_failed' };
}

/**
 * Passes a provider's stream through, reporting the call. A consumer that stops early (the reply
 * was cancelled) ends the call as aborted.
 */
async function* observed<T>(
  call: ProviderCall,
  source: () => AsyncIterable<T>,
  signal: AbortSignal,
  now: () => number,
  each: (item: T) => void,
  observer: ProviderObserver,
): AsyncGenerator<T> {
  observer.started?.(call);
  let outcome: CallOutcome = 'aborted';
  try {
    for await (const item of source()) {
      each(item);
      yield item;
    }
    outcome = signal.aborted ? 'aborted' : 'completed';
  } catch (error) {
    const ended = failure(error, signal);
    outcome = ended.outcome;
    call.errorCode = ended.code;
    throw error;
  } finally {
    call.outcome = outcome;
    call.endedAt = now();
    observer.ended?.(call);
  }
}

function modelOf(llm: LlmProvider, request: LlmRequest): string | undefined {
  if (request.model !== undefined) return request.model;
  const model = (llm as { model?: unknown }).model;
  return typeof model === 'string' ? model : undefined;
}

function instrumentLlm(llm: LlmProvider, observer: ProviderObserver, now: () => number): LlmProvider {
  return {
    name: llm.name,
    stream: (request) => {
      const call = begin('llm', llm.name, modelOf(llm, request), false, now());
      return observed(call, () => llm.stream(request), request.signal, now, (event: LlmEvent) => {
        if (event.type === 'usage') {
          call.inputTokens = (call.inputTokens ?? 0) + event.usage.inputTokens;
          call.outputTokens = (call.outputTokens ?? 0) + event.usage.outputTokens;
          return;
        }
        if (event.type === 'tool_call') call.toolCalls++;
        call.firstAt ??= now();
      }, observer);
    },
  };
}

function instrumentTts(tts: TtsProvider, observer: ProviderObserver, now: () => number): TtsProvider {
  return {
    name: tts.name,
    synthesize: (text: string, options: TtsOptions) => {
      const call = begin('tts', tts.name, undefined, false, now());
      call.text = text;
      return observed(call, () => tts.synthesize(text, options), options.signal, now, (_chunk: TtsChunk) => {
        call.firstAt ??= now();
      }, observer);
    },
  };
}

function instrumentStt(stt: SttProvider, observer: ProviderObserver, now: () => number): SttProvider {
  const transcribe = async (audio: PcmFloat, options: SttOptions): Promise<Transcript> => {
    const call = begin('stt', stt.name, undefined, false, now());
    observer.started?.(call);
    try {
      const transcript = await stt.transcribe(audio, options);
      call.firstAt = now();
      call.text = transcript.text;
      call.outcome = options.signal.aborted ? 'aborted' : 'completed';
      return transcript;
    } catch (error) {
      const ended = failure(error, options.signal);
      call.outcome = ended.outcome;
      call.errorCode = ended.code;
      throw error;
    } finally {
      call.endedAt = now();
      observer.ended?.(call);
    }
  };
  const stream = stt.stream?.bind(stt);
  if (stream === undefined) return { name: stt.name, transcribe };
  return {
    name: stt.name,
    transcribe,
    stream: (audio: AsyncIterable<Float32Array>, options: SttStreamOptions) => {
      const call = begin('stt', stt.name, undefined, true, now());
      const segments: string[] = [];
      // Notes when the audio ends; everything else passes through.
      async function* heard(): AsyncGenerator<Float32Array> {
        for await (const chunk of audio) yield chunk;
        call.audioEndedAt = now();
      }
      const results = observed(call, () => stream(heard(), options), options.signal, now, (result: Transcript) => {
        if (result.final && result.text.trim().length > 0) segments.push(result.text.trim());
      }, {
        started: observer.started,
        ended: (ended) => {
          // The stream's answer is complete when its results end after the audio did.
          if (ended.outcome === 'completed' && ended.audioEndedAt !== undefined) ended.firstAt = ended.endedAt;
          ended.text = segments.join(' ');
          observer.ended?.(ended);
        },
      });
      return results;
    },
  };
}

/** The providers with every call reported to `observer`. `now` is a wall clock in ms (epoch). */
export function instrumentProviders(providers: Providers, observer: ProviderObserver, now: () => number): Providers {
  return {
    stt: instrumentStt(providers.stt, observer, now),
    llm: instrumentLlm(providers.llm, observer, now),
    tts: instrumentTts(providers.tts, observer, now),
  };
}
