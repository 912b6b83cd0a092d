/**
 * Session events → wire messages, as a pure codec. The session actor emits `SessionEmitted` events
 * (machines/session-types.ts) and has a public state (`publicState(snapshot.value)`); this module
 * turns them into the `ServerMessage`s a client receives. No sockets, no actors, no clocks: the
 * little state the translation needs is explicit and immutable, so every case is a unit test.
 *
 *   const step = encodeSessionEvent(event, state);   // { messages, state }
 *   const msgs = encodeSessionState(next, previous); // [] or [session.state]
 *
 * `SessionEventEncoder` keeps that state for a caller that does not want to thread it.
 */
import type { PublicState, SessionEmitted } from '../../machines/session-types.js';
import { ERROR_CODES } from './error-codes.js';
import { clientErrorMessage, clientToolError } from './error-messages.js';
import type { ServerMessage, ServerMessageOf } from './messages.js';

/** What the translation remembers between events. */
export interface SessionEncoderState {
  /** Replies whose audio started and has not ended yet: their `reply.done` is preceded by `reply.audio_end`. */
  readonly audioStarted: readonly number[];
  /** A guard is set: reply text reaches the client only once it has been allowed (in `reply.done`). */
  readonly hideDeltas: boolean;
}

export interface EncodedStep {
  readonly messages: readonly ServerMessage[];
  readonly state: SessionEncoderState;
}

export function initialEncoderState(options: { readonly hideDeltas?: boolean } = {}): SessionEncoderState {
  return { audioStarted: [], hideDeltas: options.hideDeltas === true };
}

type ErrorCodeOnWire = ServerMessageOf<'error'>['code'];
const WIRE_CODES: ReadonlySet<string> = new Set<string>(ERROR_CODES);

/** A session error code as it may appear on the wire (anything unknown is `internal`). */
export function wireErrorCode(code: string): ErrorCodeOnWire {
  return (WIRE_CODES.has(code) ? code : 'internal') as ErrorCodeOnWire;
}

/** A tool's JSON text as a value; text that is not JSON stays the text it is. */
function jsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const TOOL_ERROR_MAX = 4096;

/**
 * The wire messages for one session event, and the encoder state after it. Events with no wire
 * form (`turn.start`, `turn.endpoint` and `reply.preemptive` — the client sees those in
 * `metrics.turn` —, `reply.paused` / `reply.resumed` — the client sees those as the
 * `interrupted.*` states —, `session.resumed` / `session.resumeRefused` / `session.closed`, which the
 * connection answers itself) give no messages.
 */
export function encodeSessionEvent(event: SessionEmitted, state: SessionEncoderState): EncodedStep {
  const same = (messages: readonly ServerMessage[]): EncodedStep => ({ messages, state });
  switch (event.type) {
    case 'vad.speechStart':
      return same([{ type: 'vad.speech_start', atMs: event.atMs }]);
    case 'vad.speechEnd':
      return same([{ type: 'vad.speech_end', atMs: event.atMs, durationMs: event.durationMs, voicedMs: event.voicedMs }]);
    case 'transcript.partial':
      return same([{ type: 'transcript.partial', text: event.text }]);
    case 'transcript.final':
      return same([{ type: 'transcript.final', text: event.text }]);
    case 'reply.delta':
      return same(state.hideDeltas ? [] : [{ type: 'reply.delta', replyId: String(event.replyId), text: event.text }]);
    case 'reply.audioStart':
      return {
        messages: [{ type: 'reply.audio_start', replyId: String(event.replyId), sampleRate: event.sampleRate }],
        state: state.audioStarted.includes(event.replyId) ? state : { ...state, audioStarted: [...state.audioStarted, event.replyId] },
      };
    case 'reply.done': {
      const replyId = String(event.replyId);
      const done: ServerMessage = { type: 'reply.done', replyId, text: event.text, interrupted: event.interrupted };
      if (!state.audioStarted.includes(event.replyId)) return same([done]);
      return {
        messages: [{ type: 'reply.audio_end', replyId }, done],
        state: { ...state, audioStarted: state.audioStarted.filter((id) => id !== event.replyId) },
      };
    }
    case 'interruption.false':
      return same([{ type: 'interruption.false', replyId: String(event.replyId), voicedMs: event.voicedMs }]);
    case 'interruption.confirmed':
      return same([{ type: 'interruption.confirmed', replyId: String(event.replyId), voicedMs: event.voicedMs, by: event.by }]);
    case 'tools.start':
      return same(
        event.calls.map((call) => ({
          type: 'tool.start' as const,
          replyId: String(event.replyId),
          callId: call.id,
          name: call.name,
          // The model may produce invalid JSON; the client sees it as it is.
          arguments: jsonOrText(call.arguments),
        })),
      );
    case 'tools.end':
      return same(
        event.results.map((result): ServerMessage =>
          result.ok
            ? { type: 'tool.end', replyId: String(event.replyId), callId: result.callId, name: result.name, ok: true, result: jsonOrText(result.content) }
            : { type: 'tool.end', replyId: String(event.replyId), callId: result.callId, name: result.name, ok: false, error: clientToolError(result.content).slice(0, TOOL_ERROR_MAX) },
        ),
      );
    case 'error': {
      // The client gets the code and a generic message; the detail is the server's (error-messages.ts).
      const code = wireErrorCode(event.code);
      return same([{ type: 'error', code, message: clientErrorMessage(code, event.message, event.provider), fatal: event.fatal }]);
    }
    case 'session.idle':
      return same([{ type: 'session.idle', prompts: event.prompts }]);
    case 'stage.change':
      return same([{ type: 'stage.change', from: event.from, to: event.to, reason: event.reason }]);
    case 'stage.data':
    case 'turn.start':
    case 'turn.endpoint':
    case 'reply.preemptive':
    case 'reply.paused':
    case 'reply.resumed':
    case 'session.resumed':
    case 'session.resumeRefused':
    case 'session.closed':
      return same([]);
  }
}

/**
 * `session.state` when the public state (turn or voice) changed since `previous`, else nothing.
 * `previous` undefined: the first report, without a `previous` field.
 */
export function encodeSessionState(next: PublicState, previous: PublicState | undefined): ServerMessage[] {
  if (previous !== undefined && previous.state === next.state && previous.voice === next.voice) return [];
  return [
    previous === undefined
      ? { type: 'session.state', state: next.state, voice: next.voice }
      : { type: 'session.state', state: next.state, voice: next.voice, previous: previous.state },
  ];
}

/** The codec with its state kept: one per session. */
export class SessionEventEncoder {
  #state: SessionEncoderState;
  #public: PublicState | undefined;

  constructor(options: { readonly hideDeltas?: boolean } = {}) {
    this.#state = initialEncoderState(options);
  }

  /** The last public state reported by {@link state}. */
  get current(): PublicState | undefined {
    return this.#public;
  }

  event(event: SessionEmitted): readonly ServerMessage[] {
    const step = encodeSessionEvent(event, this.#state);
    this.#state = step.state;
    return step.messages;
  }

  state(next: PublicState): readonly ServerMessage[] {
    const messages = encodeSessionState(next, this.#public);
    if (messages.length > 0) this.#public = { state: next.state, voice: next.voice };
    return messages;
  }
}
