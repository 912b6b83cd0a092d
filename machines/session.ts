/**
 * The voice session statechart. It decides what happens next; src/session/ supplies the actors
 * that do the I/O:
 * - `vad`    fromCallback, spawned for the whole session: inbound audio → vad.speechStart / vad.speechEnd
 * - `stt`    fromPromise, invoked while `transcribing`: one utterance → its text
 * - `reply`  the reply machine (machines/reply.ts) with its own llm / tools / tts / playout children
 * - `motion` fromCallback, spawned when an avatar is attached: the Motion Server link
 *
 * States are part of the public API and of the wire protocol (`session.state`):
 * listening (idle | userSpeaking), transcribing, thinking, speaking, interrupted (userSpeaking |
 * falseAlarm), suspended, closed. The working states sit under `active`; `suspended` (transport
 * lost) and `closed` are outside it.
 */
import { type ActorRefFrom, and, assign, emit, fromCallback, fromPromise, not, sendTo, setup, spawnChild, stateIn, stopChild } from 'xstate';
import type { ChatMessage, PcmFloat, ToolCall } from '../src/providers/types.js';
import { appendAssistant, appendToolCalls, appendToolResult, appendUser, limitHistory } from '../src/session/history.js';
import { playedText, replyMachine, type ToolResult } from './reply.js';
import {
  concatAudio,
  DEFAULT_SESSION_SETTINGS,
  errorParams,
  type MotionChildCommand,
  type SessionContext,
  type SessionEmitted,
  type SessionEvent,
  type SessionInput,
  wordCount,
} from './session-types.js';

export * from './session-types.js';

function missing(name: string): never {
  throw new Error(`The session machine's '${name}' actor was not provided (use sessionMachine.provide({ actors }))`);
}

/** What the user heard of the current reply. */
function heardText(context: SessionContext): string {
  return context.reply === undefined ? '' : playedText(context.reply.getSnapshot().context);
}

/** Cancel the current reply, keeping only what was heard (barge-in confirmed, user typed, user asked to stop). */
const CANCEL_REPLY = ['emitCancelled', 'recordHeardText', 'stopReply', 'forgetReply', 'interruptMotion'] as const;

type ReplyEnd = Extract<SessionEvent, { type: 'reply.done' | 'reply.failed' }>;
const endText = (event: ReplyEnd): string => (event.type === 'reply.done' ? event.text : event.playedText);

/** The reply finished and its audio drained: all of it was heard. */
const COMMIT_REPLY = [
  { type: 'emitReplyDone', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: false }) },
  { type: 'recordReplyText', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event) }) },
  'stopReply',
  'forgetReply',
] as const;

/** The reply failed (provider error): report it and keep what was heard, marked as cut. */
const FAIL_REPLY = [
  {
    type: 'emitError',
    params: ({ event }: { event: ReplyEnd }) =>
      event.type === 'reply.failed' ? { code: event.error.code, message: event.error.message } : { code: 'internal', message: 'reply failed' },
  },
  { type: 'emitReplyDone', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: true }) },
  { type: 'recordPartialText', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event) }) },
  'stopReply',
  'forgetReply',
  'interruptMotion',
] as const;

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    emitted: {} as SessionEmitted,
  },
  actors: {
    vad: fromCallback(() => missing('vad')),
    stt: fromPromise<string, { audio: PcmFloat }>(async () => missing('stt')),
    reply: replyMachine,
    // No avatar unless src/session provides a Motion Server link.
    motion: fromCallback<MotionChildCommand>(() => undefined),
  },
  guards: {
    /**
     * Provided by src/session: a constant-time compare of the `session.resume` event's token with
     * the session's secret. The default refuses every resume.
     */
    resumeTokenValid: (_: { context: SessionContext; event: SessionEvent }) => false,
    /** The event comes from the live reply (a stopped one may still have events in flight). */
    isCurrentReply: ({ context, event }) => context.reply !== undefined && 'replyId' in event && event.replyId === context.turn,
    replyAudioStarted: ({ context }) => context.reply?.getSnapshot().context.audioStarted ?? false,
    nothingToSay: ({ context }, params: { text: string }) => params.text.trim().length === 0 && context.queuedText.length === 0,
    hasLaterUtterance: ({ context }) => context.laterUtterance !== undefined,
    /** On an STT done event: nothing was heard. */
    transcriptEmpty: ({ event }) => {
      const output = (event as { output?: unknown }).output;
      return typeof output !== 'string' || output.trim().length === 0;
    },
    hasQueuedText: ({ context }) => context.queuedText.length > 0,
    enoughWords: ({ context }, params: { text: string }) =>
      context.settings.minInterruptionWords > 0 && wordCount(params.text) >= context.settings.minInterruptionWords,
    textNotBlank: (_, params: { text: string }) => params.text.trim().length > 0,
    hasReply: ({ context }) => context.reply !== undefined,
    hasUtterance: ({ context }) => context.utterance !== undefined,
  },
  delays: {
    minInterruption: ({ context }) => context.settings.minInterruptionMs,
    falseInterruptionTimeout: ({ context }) => context.settings.falseInterruptionTimeoutMs,
    sessionTtl: ({ context }) => context.settings.sessionTtlMs,
  },
  actions: {
    spawnVad: spawnChild('vad', { id: 'vad' }),
    // `systemId` lets the reply forward its synthesized audio to the link as it arrives.
    spawnMotion: spawnChild('motion', { id: 'motion', systemId: 'motion' }),
    keepUtterance: assign({
      utterance: ({ context }, params: { audio: PcmFloat }) => concatAudio(context.utterance, params.audio),
    }),
    keepLaterUtterance: assign({
      laterUtterance: ({ context }, params: { audio: PcmFloat }) => concatAudio(context.laterUtterance, params.audio),
    }),
    queueText: assign({ queuedText: ({ context }, params: { text: string }) => [...context.queuedText, params.text] }),
    /** Appends the transcript (if any) and the queued typed text as user messages, in order. */
    commitUserTurn: assign(({ context }, params: { transcript: string }) => {
      let history = context.history;
      if (params.transcript.trim().length > 0) history = appendUser(history, params.transcript.trim());
      for (const text of context.queuedText) history = appendUser(history, text);
      // Speech that came after the typed text is the next utterance.
      return { history, utterance: context.laterUtterance, laterUtterance: undefined, queuedText: [] };
    }),
    commitTypedText: assign({
      history: ({ context }, params: { text: string }) => appendUser(context.history, params.text.trim()),
    }),
    dropUtterance: assign({ utterance: undefined, laterUtterance: undefined }),
    startReply: assign(({ context, spawn }) => {
      const turn = context.turn + 1;
      const history = limitHistory(context.history, context.settings.history);
      const messages: ChatMessage[] =
        context.systemPrompt.length > 0 ? [{ role: 'system', content: context.systemPrompt }, ...history] : [...history];
      const reply = spawn('reply', {
        id: `reply-${turn}`,
        input: { replyId: turn, messages, tools: context.tools, settings: context.settings.reply },
      });
      return { turn, history, reply };
    }),
    emitTurnStart: emit(({ context }, params: { source: 'voice' | 'text' }) => ({
      type: 'turn.start' as const,
      replyId: context.turn,
      source: params.source,
    })),
    // Ending a reply. These run in this order (see CANCEL_REPLY / COMMIT_REPLY / FAIL_REPLY below):
    // report and record what was heard while the reply still exists, then stop it and forget it.
    emitCancelled: emit(({ context }) => ({
      type: 'reply.done' as const,
      replyId: context.turn,
      text: heardText(context),
      interrupted: true,
    })),
    recordHeardText: assign({ history: ({ context }) => appendAssistant(context.history, heardText(context), true) }),
    recordReplyText: assign({
      history: ({ context }, params: { text: string }) => appendAssistant(context.history, params.text, false),
    }),
    emitReplyDone: emit(({ context }, params: { text: string; interrupted: boolean }) => ({
      type: 'reply.done' as const,
      replyId: context.turn,
      text: params.text,
      interrupted: params.interrupted,
    })),
    recordPartialText: assign({
      history: ({ context }, params: { text: string }) => appendAssistant(context.history, params.text, true),
    }),
    stopReply: stopChild(({ context }) => context.reply ?? 'reply-none'),
    forgetReply: assign({ reply: undefined }),
    interruptMotion: sendTo('motion', { type: 'motion.interrupt' as const }),
    pauseOutput: ({ context }) => context.reply?.send({ type: 'output.pause' }),
    resumeOutput: ({ context }) => context.reply?.send({ type: 'output.resume' }),
    recordToolCalls: assign({
      history: ({ context }, params: { calls: readonly ToolCall[] }) => appendToolCalls(context.history, params.calls),
    }),
    emitToolCalls: emit(({ context }, params: { calls: readonly ToolCall[] }) => ({
      type: 'tools.start' as const,
      replyId: context.turn,
      calls: params.calls,
    })),
    recordToolResults: assign({
      history: ({ context }, params: { results: readonly ToolResult[] }) =>
        params.results.reduce((h, r) => appendToolResult(h, r.callId, r.name, r.content), context.history),
    }),
    emitToolResults: emit(({ context }, params: { results: readonly ToolResult[] }) => ({
      type: 'tools.end' as const,
      replyId: context.turn,
      results: params.results,
    })),
    emitDelta: emit((_, params: { replyId: number; text: string }) => ({ type: 'reply.delta' as const, ...params })),
    emitAudioStart: emit((_, params: { replyId: number; sampleRate: number }) => ({ type: 'reply.audioStart' as const, ...params })),
    emitSpeechStart: emit((_, params: { atMs: number }) => ({ type: 'vad.speechStart' as const, atMs: params.atMs })),
    emitSpeechEnd: emit((_, params: { atMs: number; durationMs: number }) => ({
      type: 'vad.speechEnd' as const,
      atMs: params.atMs,
      durationMs: params.durationMs,
    })),
    emitPartial: emit((_, params: { text: string }) => ({ type: 'transcript.partial' as const, text: params.text })),
    emitFinal: emit((_, params: { text: string }) => ({ type: 'transcript.final' as const, text: params.text })),
    emitError: emit((_, params: { code: string; message: string; fatal?: boolean }) => ({
      type: 'error' as const,
      code: params.code,
      message: params.message,
      fatal: params.fatal ?? false,
    })),
    emitResumed: emit({ type: 'session.resumed' as const }),
    emitResumeRefused: emit({ type: 'session.resumeRefused' as const }),
    emitClosed: emit((_, params: { reason: string }) => ({ type: 'session.closed' as const, reason: params.reason })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({
    settings: input.settings ?? DEFAULT_SESSION_SETTINGS,
    systemPrompt: input.systemPrompt ?? '',
    tools: input.tools ?? [],
    history: input.history ?? [],
    turn: 0,
    reply: undefined,
    utterance: undefined,
    queuedText: [],
    laterUtterance: undefined,
  }),
  entry: ['spawnVad', 'spawnMotion'],
  initial: 'active',
  on: {
    'session.close': {
      target: '.closed',
      actions: { type: 'emitClosed', params: ({ event }) => ({ reason: event.reason ?? 'closed' }) },
    },
    'vad.error': {
      actions: { type: 'emitError', params: ({ event }) => ({ code: event.error.code, message: event.error.message }) },
    },
    // Reply bookkeeping, the same in every state a reply can be alive in (states override it
    // where the event also moves the session).
    'reply.delta': {
      guard: 'isCurrentReply',
      actions: { type: 'emitDelta', params: ({ event }) => ({ replyId: event.replyId, text: event.text }) },
    },
    'reply.toolCalls': {
      guard: 'isCurrentReply',
      actions: [
        { type: 'recordToolCalls', params: ({ event }) => ({ calls: event.calls }) },
        { type: 'emitToolCalls', params: ({ event }) => ({ calls: event.calls }) },
      ],
    },
    'reply.toolResults': {
      guard: 'isCurrentReply',
      actions: [
        { type: 'recordToolResults', params: ({ event }) => ({ results: event.results }) },
        { type: 'emitToolResults', params: ({ event }) => ({ results: event.results }) },
      ],
    },
    'reply.audioStart': {
      guard: 'isCurrentReply',
      actions: { type: 'emitAudioStart', params: ({ event }) => ({ replyId: event.replyId, sampleRate: event.sampleRate }) },
    },
    // A reply that ends (finished, or failed) sends the session back to listening — to the user's
    // speech when it ended during an unconfirmed interruption, nowhere while suspended.
    'reply.done': [
      { guard: and(['isCurrentReply', stateIn('#session.active.interrupted.userSpeaking')]), target: '.active.listening.userSpeaking', actions: COMMIT_REPLY },
      { guard: and(['isCurrentReply', stateIn('#session.active')]), target: '.active.listening', actions: COMMIT_REPLY },
      { guard: 'isCurrentReply', actions: COMMIT_REPLY },
    ],
    'reply.failed': [
      { guard: and(['isCurrentReply', stateIn('#session.active.interrupted.userSpeaking')]), target: '.active.listening.userSpeaking', actions: FAIL_REPLY },
      { guard: and(['isCurrentReply', stateIn('#session.active')]), target: '.active.listening', actions: FAIL_REPLY },
      { guard: 'isCurrentReply', actions: FAIL_REPLY },
    ],
  },
  states: {
    active: {
      initial: 'listening',
      on: {
        'transport.lost': '#session.suspended',
        'stt.partial': { actions: { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) } },
        // Typed while the agent thinks, speaks or is being interrupted: the reply is cut to what was
        // heard and the text starts the next turn. (listening and transcribing handle it themselves.)
        'user.text': {
          guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
          target: '.thinking',
          reenter: true,
          actions: [
            ...CANCEL_REPLY,
            { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) },
            'startReply',
            { type: 'emitTurnStart', params: { source: 'text' } },
          ],
        },
      },
      states: {
        listening: {
          initial: 'idle',
          on: {
            'user.text': {
              guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
              target: 'thinking',
              actions: [
                'dropUtterance',
                { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) },
                'startReply',
                { type: 'emitTurnStart', params: { source: 'text' } },
              ],
            },
          },
          states: {
            idle: {
              on: { 'vad.speechStart': { target: 'userSpeaking', actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) } } },
            },
            userSpeaking: {
              on: {
                'vad.speechEnd': {
                  target: '#session.active.transcribing',
                  actions: [
                    { type: 'emitSpeechEnd', params: ({ event }) => ({ atMs: event.atMs, durationMs: event.durationMs }) },
                    { type: 'keepUtterance', params: ({ event }) => ({ audio: event.audio }) },
                  ],
                },
              },
            },
          },
        },
        transcribing: {
          // `pending`: the utterance is being transcribed and more speech joins it.
          // `textQueued`: text was typed meanwhile; it comes after this utterance, so later speech
          // can no longer join it and waits its turn (`userSpeaking`, then transcribed next).
          initial: 'pending',
          invoke: {
            src: 'stt',
            input: ({ context }) => ({ audio: context.utterance ?? { samples: new Float32Array(0), sampleRate: 16_000 } }),
            // A transcript is announced (transcript.final) only when something was heard.
            onDone: [
              {
                guard: { type: 'nothingToSay', params: ({ event }) => ({ text: event.output }) },
                target: 'listening',
                actions: 'dropUtterance',
              },
              {
                guard: and([stateIn('#session.active.transcribing.userSpeaking'), 'transcriptEmpty']),
                target: 'listening.userSpeaking',
                actions: { type: 'commitUserTurn', params: { transcript: '' } },
              },
              {
                guard: stateIn('#session.active.transcribing.userSpeaking'),
                target: 'listening.userSpeaking',
                actions: [
                  { type: 'emitFinal', params: ({ event }) => ({ text: event.output }) },
                  { type: 'commitUserTurn', params: ({ event }) => ({ transcript: event.output }) },
                ],
              },
              {
                guard: and(['hasLaterUtterance', 'transcriptEmpty']),
                target: 'transcribing',
                reenter: true,
                actions: { type: 'commitUserTurn', params: { transcript: '' } },
              },
              {
                guard: 'hasLaterUtterance',
                target: 'transcribing',
                reenter: true,
                actions: [
                  { type: 'emitFinal', params: ({ event }) => ({ text: event.output }) },
                  { type: 'commitUserTurn', params: ({ event }) => ({ transcript: event.output }) },
                ],
              },
              {
                guard: 'transcriptEmpty',
                target: 'thinking',
                actions: [
                  { type: 'commitUserTurn', params: { transcript: '' } },
                  'startReply',
                  { type: 'emitTurnStart', params: { source: 'text' } },
                ],
              },
              {
                target: 'thinking',
                actions: [
                  { type: 'emitFinal', params: ({ event }) => ({ text: event.output }) },
                  { type: 'commitUserTurn', params: ({ event }) => ({ transcript: event.output }) },
                  'startReply',
                  { type: 'emitTurnStart', params: { source: 'voice' } },
                ],
              },
            ],
            onError: [
              {
                guard: not('hasQueuedText'),
                target: 'listening',
                actions: [{ type: 'emitError', params: ({ event }) => errorParams(event.error, 'provider_failed') }, 'dropUtterance'],
              },
              {
                guard: stateIn('#session.active.transcribing.userSpeaking'),
                target: 'listening.userSpeaking',
                actions: [
                  { type: 'emitError', params: ({ event }) => errorParams(event.error, 'provider_failed') },
                  { type: 'commitUserTurn', params: { transcript: '' } },
                ],
              },
              {
                guard: 'hasLaterUtterance',
                target: 'transcribing',
                reenter: true,
                actions: [
                  { type: 'emitError', params: ({ event }) => errorParams(event.error, 'provider_failed') },
                  { type: 'commitUserTurn', params: { transcript: '' } },
                ],
              },
              {
                target: 'thinking',
                actions: [
                  { type: 'emitError', params: ({ event }) => errorParams(event.error, 'provider_failed') },
                  { type: 'commitUserTurn', params: { transcript: '' } },
                  'startReply',
                  { type: 'emitTurnStart', params: { source: 'text' } },
                ],
              },
            ],
          },
          on: {
            'user.text': {
              guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
              target: '.textQueued',
              actions: { type: 'queueText', params: ({ event }) => ({ text: event.text }) },
            },
          },
          states: {
            pending: {
              on: {
                // The user went on speaking: this utterance and the next become one turn.
                'vad.speechStart': {
                  target: '#session.active.listening.userSpeaking',
                  actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) },
                },
              },
            },
            textQueued: {
              on: {
                'vad.speechStart': {
                  target: 'userSpeaking',
                  actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) },
                },
              },
            },
            userSpeaking: {
              on: {
                'vad.speechEnd': {
                  target: 'textQueued',
                  actions: [
                    { type: 'emitSpeechEnd', params: ({ event }) => ({ atMs: event.atMs, durationMs: event.durationMs }) },
                    { type: 'keepLaterUtterance', params: ({ event }) => ({ audio: event.audio }) },
                  ],
                },
              },
            },
          },
        },
        thinking: {
          on: {
            'reply.audioStart': {
              guard: 'isCurrentReply',
              target: 'speaking',
              actions: { type: 'emitAudioStart', params: ({ event }) => ({ replyId: event.replyId, sampleRate: event.sampleRate }) },
            },
            'vad.speechStart': { target: 'interrupted', actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) } },
            'user.interrupt': { target: 'listening', actions: CANCEL_REPLY },
          },
        },
        speaking: {
          on: {
            'vad.speechStart': { target: 'interrupted', actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) } },
            'user.interrupt': { target: 'listening', actions: CANCEL_REPLY },
          },
        },
        interrupted: {
          // Output is paused the moment the user starts talking; the reply is cancelled only once the
          // interruption is confirmed.
          entry: 'pauseOutput',
          initial: 'userSpeaking',
          states: {
            userSpeaking: {
              after: {
                minInterruption: { target: '#session.active.listening.userSpeaking', actions: CANCEL_REPLY },
              },
              on: {
                'stt.partial': {
                  guard: { type: 'enoughWords', params: ({ event }) => ({ text: event.text }) },
                  target: '#session.active.listening.userSpeaking',
                  actions: [...CANCEL_REPLY, { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) }],
                },
                'user.interrupt': { target: '#session.active.listening.userSpeaking', actions: CANCEL_REPLY },
                'vad.speechEnd': {
                  target: 'falseAlarm',
                  actions: { type: 'emitSpeechEnd', params: ({ event }) => ({ atMs: event.atMs, durationMs: event.durationMs }) },
                },
              },
            },
            falseAlarm: {
              after: {
                falseInterruptionTimeout: [
                  { guard: 'replyAudioStarted', target: '#session.active.speaking', actions: 'resumeOutput' },
                  { target: '#session.active.thinking', actions: 'resumeOutput' },
                ],
              },
              on: {
                'vad.speechStart': {
                  target: 'userSpeaking',
                  actions: { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) },
                },
                'user.interrupt': { target: '#session.active.listening', actions: CANCEL_REPLY },
              },
            },
          },
        },
      },
    },
    suspended: {
      entry: 'pauseOutput',
      after: {
        sessionTtl: { target: 'closed', actions: { type: 'emitClosed', params: { reason: 'expired' } } },
      },
      on: {
        // Back to where the conversation was: a live reply resumes playing (an interruption that
        // the drop cut short is dropped with it), an utterance not yet transcribed is transcribed.
        'session.resume': [
          {
            guard: not('resumeTokenValid'),
            actions: 'emitResumeRefused',
          },
          { guard: and(['hasReply', 'replyAudioStarted']), target: 'active.speaking', actions: ['resumeOutput', 'emitResumed'] },
          { guard: 'hasReply', target: 'active.thinking', actions: ['resumeOutput', 'emitResumed'] },
          { guard: 'hasUtterance', target: 'active.transcribing', actions: 'emitResumed' },
          { target: 'active.listening', actions: 'emitResumed' },
        ],
      },
    },
    closed: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;
export type SessionActorRef = ActorRefFrom<SessionMachine>;

