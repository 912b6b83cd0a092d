/**
 * OpenTelemetry spans of a session's turns, through @opentelemetry/api only: with no SDK
 * registered by the application every call is a no-op. The span tree (docs/observability.md):
 *
 *   voxstate.turn                     one per reply (a root span: one trace per turn)
 *   ├─ voxstate.end_of_turn           voice turns: audio edge → end-of-turn decision
 *   ├─ voxstate.stt                   each recognition of the turn's speech
 *   ├─ chat {model}                   each LLM call (GenAI semantic conventions)
 *   ├─ execute_tool {name}            each tool call
 *   ├─ voxstate.tts                   each synthesized segment
 *   └─ voxstate.first_audio           audio edge (or turn start) → first agent audio frame
 *
 * Spans are made from the session's emitted events and the provider-call records of
 * ./instrument.ts, with explicit start and end times; nothing in machines/ knows about them.
 * Transcripts, reply text, tool arguments and results are attributes only with `traceContent`.
 */
import { type Attributes, type Context, ProxyTracerProvider, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { SessionEmitted } from '../../machines/session-types.js';
import { firstResultMs, type ProviderCall } from './instrument.js';

export const TRACER_NAME = 'voxstate';

/** Calls and recognitions kept for a turn that has not started yet; older ones are dropped. */
const MAX_PENDING = 16;

// @opentelemetry/api 1.x: with no provider registered, the global one is a ProxyTracerProvider
// whose delegate is the API's no-op provider (the same object for every proxy without a delegate).
const NO_DELEGATE = new ProxyTracerProvider().getDelegate();

/** Whether an application registered an OpenTelemetry tracer provider (else spans are no-ops). */
export function tracingRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider && provider.getDelegate() === NO_DELEGATE);
}

export interface TurnTracerOptions {
  readonly sessionId: string;
  /** Put transcripts, reply text, tool arguments and results in attributes. Default false. */
  readonly traceContent?: boolean;
  /** Default: the global tracer provider's `voxstate` tracer. */
  readonly tracer?: Tracer;
  /** Wall clock in ms since the epoch; the same clock the provider records use. */
  readonly now: () => number;
}

interface EndOfTurn {
  readonly edgeAt: number;
  readonly decidedAt: number;
  readonly by: string;
  readonly probability: number | undefined;
  readonly endpointingMs: number;
}

interface ToolRun {
  readonly name: string;
  readonly startedAt: number;
  readonly arguments: string;
}

interface Turn {
  readonly id: number;
  readonly span: Span;
  readonly context: Context;
  /** What the first audio is measured from: the audio edge of a voice turn, else the turn's start. */
  readonly audioFrom: number;
  firstAudio: boolean;
  readonly tools: Map<string, ToolRun>;
}

/** Provider names are often `vendor:model` (openai:gpt-4o-mini); the vendor is the GenAI provider name. */
function vendorOf(provider: string): string {
  const colon = provider.indexOf(':');
  return colon > 0 ? provider.slice(0, colon) : provider;
}

export class TurnTracer {
  readonly #tracer: Tracer;
  readonly #sessionId: string;
  readonly #content: boolean;
  readonly #now: () => number;
  #turn: Turn | undefined;
  /** Calls and their turn, once the turn is known. */
  readonly #owner = new WeakMap<ProviderCall, Turn>();
  /** Recognitions since the last voice turn started, and LLM/TTS calls made while no turn was open (a speculative reply). */
  #recognitions: ProviderCall[] = [];
  #unowned: ProviderCall[] = [];
  #endOfTurn: EndOfTurn | undefined;
  #heard: string | undefined;
  #typed: string | undefined;
  #discarded = false;
  #stage: string | undefined;
  /** The code of an error event that was the last event: a reply.done right after it is a failed reply. */
  #failedWith: string | undefined;

  constructor(options: TurnTracerOptions) {
    this.#tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
    this.#sessionId = options.sessionId;
    this.#content = options.traceContent === true;
    this.#now = options.now;
  }

  /** The text the user typed for the turn about to start (kept only with traceContent). */
  typed(text: string): void {
    if (this.#content) this.#typed = text;
  }

  /** An agent audio frame of reply `replyId` reached the transport. */
  frame(replyId: number): void {
    const turn = this.#turn;
    if (turn === undefined || turn.id !== replyId || turn.firstAudio) return;
    turn.firstAudio = true;
    const now = this.#now();
    this.#child(turn, 'voxstate.first_audio', turn.audioFrom, now, { 'voxstate.first_audio_ms': Math.max(0, now - turn.audioFrom) });
  }

  callStarted(call: ProviderCall): void {
    if (call.kind === 'stt') this.#recognitions = keep(this.#recognitions, call);
    else if (this.#turn !== undefined) this.#owner.set(call, this.#turn);
    else this.#unowned = keep(this.#unowned, call);
  }

  callEnded(call: ProviderCall): void {
    const turn = this.#owner.get(call);
    // Otherwise it waits for its turn to start.
    if (turn !== undefined) this.#callSpan(turn, call);
  }

  event(event: SessionEmitted): void {
    const failedWith = this.#failedWith;
    this.#failedWith = undefined;
    switch (event.type) {
      case 'turn.endpoint': {
        const now = this.#now();
        this.#endOfTurn = { edgeAt: now - event.endpointingMs, decidedAt: now, by: event.by, probability: event.probability, endpointingMs: event.endpointingMs };
        break;
      }
      case 'transcript.final':
        if (this.#content) this.#heard = event.text;
        break;
      case 'stage.change':
        this.#stage = event.to ?? undefined;
        break;
      case 'reply.preemptive':
        if (event.outcome === 'discarded') this.#discarded = true;
        else if (event.outcome === 'used' && this.#turn?.id === event.replyId) this.#turn.span.setAttribute('voxstate.preemptive', 'used');
        break;
      case 'turn.start':
        this.#start(event.replyId, event.source);
        break;
      case 'tools.start': {
        const turn = this.#turn;
        if (turn === undefined || turn.id !== event.replyId) break;
        const now = this.#now();
        for (const call of event.calls) turn.tools.set(call.id, { name: call.name, startedAt: now, arguments: call.arguments });
        break;
      }
      case 'tools.end': {
        const turn = this.#turn;
        if (turn === undefined || turn.id !== event.replyId) break;
        for (const result of event.results) {
          const run = turn.tools.get(result.callId);
          if (run === undefined) continue;
          turn.tools.delete(result.callId);
          this.#toolSpan(turn, result.callId, run, this.#now(), result.ok ? 'completed' : 'failed', result.content);
        }
        break;
      }
      case 'interruption.confirmed':
      case 'interruption.false':
        if (this.#turn?.id === event.replyId) {
          this.#turn.span.addEvent(
            'voxstate.interruption',
            { 'voxstate.interruption.kind': event.type === 'interruption.confirmed' ? 'confirmed' : 'false', 'voxstate.interruption.voiced_ms': event.voicedMs, ...(event.type === 'interruption.confirmed' ? { 'voxstate.interruption.by': event.by } : {}) },
            this.#now(),
          );
        }
        break;
      case 'error':
        // Not every error of the turn's time is the reply's (a recognizer falling back to batch):
        // each is an event; the status says whether the reply failed.
        this.#turn?.span.addEvent('voxstate.error', { 'error.type': event.code, 'voxstate.error.fatal': event.fatal }, this.#now());
        this.#failedWith = event.code;
        break;
      case 'reply.done':
        if (this.#turn?.id === event.replyId) this.#end(event.interrupted, event.text, failedWith);
        break;
      case 'session.closed':
        if (this.#turn !== undefined) this.#end(true, undefined);
        this.#recognitions = [];
        this.#unowned = [];
        break;
      default:
        break;
    }
  }

  #start(id: number, source: 'voice' | 'text' | 'idle' | 'stage'): void {
    if (this.#turn !== undefined) this.#end(true, undefined);
    const now = this.#now();
    const voice = source === 'voice';
    const endOfTurn = voice ? this.#endOfTurn : undefined;
    // A voice turn's recognitions: not the ones that were thrown away (a backchannel, a cancelled onset).
    const heard = voice ? this.#recognitions.filter((c) => c.outcome !== 'aborted' && !(c.outcome === 'completed' && (c.text ?? '') === '')) : [];
    this.#recognitions = voice ? [] : this.#recognitions.filter((c) => c.outcome === undefined);
    const calls = [...heard, ...this.#unowned];
    this.#unowned = [];
    const startAt = Math.min(now, endOfTurn?.edgeAt ?? now, ...calls.map((c) => c.startedAt));
    const userText = voice ? this.#heard : source === 'text' ? this.#typed : undefined;
    const attributes: Attributes = {
      'voxstate.session.id': this.#sessionId,
      'voxstate.turn.id': id,
      'voxstate.turn.source': source,
      ...(this.#stage === undefined ? {} : { 'voxstate.stage': this.#stage }),
      ...(voice ? { 'voxstate.preemptive': this.#discarded ? 'discarded' : 'off' } : {}),
      ...(this.#content && userText !== undefined ? { 'voxstate.user.text': userText } : {}),
    };
    const span = this.#tracer.startSpan('voxstate.turn', { kind: SpanKind.INTERNAL, startTime: startAt, attributes, root: true });
    const turn: Turn = { id, span, context: trace.setSpan(ROOT_CONTEXT, span), audioFrom: endOfTurn?.edgeAt ?? now, firstAudio: false, tools: new Map() };
    this.#turn = turn;
    this.#endOfTurn = undefined;
    this.#heard = undefined;
    this.#typed = undefined;
    this.#discarded = false;
    if (endOfTurn !== undefined) {
      this.#child(turn, 'voxstate.end_of_turn', endOfTurn.edgeAt, endOfTurn.decidedAt, {
        'voxstate.end_of_turn.by': endOfTurn.by,
        'voxstate.end_of_turn.endpointing_ms': endOfTurn.endpointingMs,
        ...(endOfTurn.probability === undefined ? {} : { 'voxstate.end_of_turn.probability': endOfTurn.probability }),
      });
    }
    for (const call of calls) {
      if (call.endedAt !== undefined) this.#callSpan(turn, call);
      else this.#owner.set(call, turn);
    }
  }

  #end(interrupted: boolean, text: string | undefined, failedWith?: string): void {
    const turn = this.#turn;
    if (turn === undefined) return;
    this.#turn = undefined;
    const now = this.#now();
    if (failedWith !== undefined) {
      turn.span.setStatus({ code: SpanStatusCode.ERROR, message: failedWith });
      turn.span.setAttribute('error.type', failedWith);
    }
    // Tool calls cut off with the reply.
    for (const [callId, run] of turn.tools) this.#toolSpan(turn, callId, run, now, 'aborted', undefined);
    turn.span.setAttribute('voxstate.turn.interrupted', interrupted);
    if (this.#content && text !== undefined) turn.span.setAttribute('voxstate.reply.text', text);
    turn.span.end(now);
  }

  /** A finished child of `turn`; `error` sets its status (a code). */
  #child(turn: Turn, name: string, start: number, end: number, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL, error?: string): void {
    const span = this.#tracer.startSpan(name, { kind, startTime: start, attributes }, turn.context);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end(end);
  }

  #callSpan(turn: Turn, call: ProviderCall): void {
    const end = call.endedAt ?? this.#now();
    const firstMs = firstResultMs(call);
    const first = firstMs === undefined ? {} : { 'voxstate.first_result_ms': firstMs };
    const common: Attributes = { 'voxstate.provider': call.provider, 'voxstate.outcome': call.outcome ?? 'aborted', ...first, ...(call.errorCode === undefined ? {} : { 'error.type': call.errorCode }) };
    const error = call.outcome === 'failed' ? (call.errorCode ?? 'provider_failed') : undefined;
    if (call.kind === 'llm') {
      const vendor = vendorOf(call.provider);
      this.#child(
        turn,
        call.model === undefined ? 'chat' : `chat ${call.model}`,
        call.startedAt,
        end,
        {
          ...common,
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': vendor,
          'gen_ai.system': vendor,
          'gen_ai.conversation.id': this.#sessionId,
          ...(call.model === undefined ? {} : { 'gen_ai.request.model': call.model }),
          ...(call.inputTokens === undefined ? {} : { 'gen_ai.usage.input_tokens': call.inputTokens }),
          ...(call.outputTokens === undefined ? {} : { 'gen_ai.usage.output_tokens': call.outputTokens }),
          'voxstate.llm.tool_calls': call.toolCalls,
        },
        SpanKind.CLIENT,
        error,
      );
    } else if (call.kind === 'stt') {
      const text = this.#content && call.text !== undefined ? { 'voxstate.stt.text': call.text } : {};
      this.#child(turn, 'voxstate.stt', call.startedAt, end, { ...common, 'voxstate.stt.streaming': call.streaming, ...text }, SpanKind.CLIENT, error);
    } else {
      this.#child(
        turn,
        'voxstate.tts',
        call.startedAt,
        end,
        { ...common, 'voxstate.tts.characters': call.text?.length ?? 0, ...(this.#content && call.text !== undefined ? { 'voxstate.tts.text': call.text } : {}) },
        SpanKind.CLIENT,
        error,
      );
    }
  }

  #toolSpan(turn: Turn, callId: string, run: ToolRun, end: number, outcome: 'completed' | 'failed' | 'aborted', result: string | undefined): void {
    const span = this.#tracer.startSpan(
      `execute_tool ${run.name}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: run.startedAt,
        attributes: {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': run.name,
          'gen_ai.tool.call.id': callId,
          'voxstate.outcome': outcome,
          ...(this.#content ? { 'gen_ai.tool.call.arguments': run.arguments, ...(result === undefined ? {} : { 'gen_ai.tool.call.result': result }) } : {}),
        },
      },
      turn.context,
    );
    if (outcome === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: 'tool_failed' });
    span.end(end);
  }
}

function keep(list: ProviderCall[], call: ProviderCall): ProviderCall[] {
  const next = [...list, call];
  return next.length > MAX_PENDING ? next.slice(next.length - MAX_PENDING) : next;
}
