/**
 * The voice session statechart. It decides what happens next; src/session/ supplies the actors
 * that do the I/O:
 * - `vad`    spawned for the whole session: inbound audio → vad.onset / speechStart / speechPause /
 *            speechResume / voiced / speechEnd (audio-stream time); takes `vad.reset`
 * - `stt`    invoked by `transcribing`: one utterance → its text
 * - `reply`  the reply machine (machines/reply.ts), invoked by `replying`: leaving that state stops it
 * - `motion` spawned for the whole session: the Motion Server link (a no-op without an avatar)
 *
 * `active` has three parallel regions:
 * - `voice`: what the user's microphone is doing — silent | speaking | paused (from the VAD).
 * - `turn`: the conversation — listening, transcribing, replying (thinking | speaking | interrupted).
 * - `connection`: online | suspended. The transport may drop at any point of a turn; the turn goes
 *   on (a reply keeps its place, output paused) and a resume continues it. Being a region of its
 *   own, a drop never leaves `replying`, so the reply actor it invokes survives.
 * Public names (wire `session.state`): see publicState() in ./session-types.ts.
 */
import { type ActorRefFrom, and, assign, emit, fromCallback, fromPromise, not, sendTo, setup, spawnChild, stateIn } from 'xstate';
import type { ChatMessage, PcmFloat, ToolCall } from '../src/providers/types.js';
import { appendAssistant, appendToolCalls, appendToolResult, appendUser, limitHistory } from './history.js';
import { replyMachine, type ToolResult } from './reply.js';
import {
  concatAudio,
  DEFAULT_SESSION_SETTINGS,
  errorParams,
  type MotionChildCommand,
  type SessionContext,
  type SessionEmitted,
  type SessionEvent,
  type SessionInput,
  type VadChildCommand,
  type VadChildInput,
} from './session-types.js';
import {
  type Cause,
  cancelReply,
  COMMIT_REPLY,
  CUT_BY_VOICE,
  FAIL_REPLY,
  final,
  LISTENING,
  resumeReply,
  SPEECH_DURING_REPLY,
  startReply,
  sttError,
  transcript,
  TRANSCRIBING,
  UTTERANCE_WAITING,
} from './session-transitions.js';
import { substantiveWordCount } from './words.js';

export * from './session-types.js';

function missing(name: string): never {
  throw new Error(`The session machine's '${name}' actor was not provided (use sessionMachine.provide({ actors }))`);
}

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    emitted: {} as SessionEmitted,
  },
  actors: {
    vad: fromCallback<VadChildCommand, VadChildInput>(() => missing('vad')),
    stt: fromPromise<string, { audio: PcmFloat }>(async () => missing('stt')),
    reply: replyMachine,
    // No avatar unless src/session provides a Motion Server link.
    motion: fromCallback<MotionChildCommand>(() => undefined),
  },
  guards: {
    /** Provided by src/session: a constant-time compare with the session's secret. The default refuses. */
    resumeTokenValid: (_: { context: SessionContext; event: SessionEvent }) => false,
    /** The event comes from the reply now invoked (a replaced one may still have events in flight). */
    isCurrentReply: ({ context, event }) => 'replyId' in event && event.replyId === context.turn,
    audioStarted: ({ context }) => context.audioStarted,
    nothingToSay: ({ context }, params: { text: string }) => params.text.trim().length === 0 && context.queuedText.length === 0,
    hasLaterUtterance: ({ context }) => context.laterUtterance !== undefined,
    /** On an STT done event: nothing was heard. */
    transcriptEmpty: ({ event }) => {
      const output = (event as { output?: unknown }).output;
      return typeof output !== 'string' || output.trim().length === 0;
    },
    hasQueuedText: ({ context }) => context.queuedText.length > 0,
    hasUtterance: ({ context }) => context.utterance !== undefined,
    textNotBlank: (_, params: { text: string }) => params.text.trim().length > 0,
    /** Voiced speech of the interruption reached minInterruptionMs. */
    voicedEnough: ({ context }, params: { voicedMs: number }) => params.voicedMs >= context.settings.minInterruptionMs,
    /** The interim transcript holds minInterruptionWords words that are not backchannels. */
    enoughWords: ({ context }, params: { text: string }) =>
      context.settings.minInterruptionWords > 0 &&
      substantiveWordCount(params.text, context.settings.backchannelWords) >= context.settings.minInterruptionWords,
    userTalking: not(stateIn('#session.active.voice.silent')),
    replying: stateIn('#session.active.turn.replying'),
  },
  delays: {
    falseInterruptionTimeout: ({ context }) => context.settings.falseInterruptionTimeoutMs,
    sessionTtl: ({ context }) => context.settings.sessionTtlMs,
  },
  actions: {
    spawnVad: spawnChild('vad', { id: 'vad', input: ({ context }) => ({ voicedMarksMs: [context.settings.minInterruptionMs] }) }),
    // `systemId` lets the reply's TTS forward synthesized audio to the link as it arrives.
    // Its avatar frames go to the client feed beside the machine, not through it (notifyParent: false).
    spawnMotion: spawnChild('motion', { id: 'motion', systemId: 'motion', input: { notifyParent: false } }),
    resetVad: sendTo('vad', { type: 'vad.reset' } satisfies VadChildCommand),
    setVoiced: assign({ voicedMs: (_, params: { voicedMs: number }) => params.voicedMs }),
    keepUtterance: assign({ utterance: ({ context }, params: { audio: PcmFloat }) => concatAudio(context.utterance, params.audio) }),
    keepLaterUtterance: assign({
      laterUtterance: ({ context }, params: { audio: PcmFloat }) => concatAudio(context.laterUtterance, params.audio),
    }),
    dropUtterance: assign({ utterance: undefined, laterUtterance: undefined }),
    queueText: assign({ queuedText: ({ context }, params: { text: string }) => [...context.queuedText, params.text] }),
    /** Appends the transcript (if any) and the queued typed text as user messages, in order. */
    commitUserTurn: assign(({ context }, params: { transcript: string }) => {
      let history = context.history;
      if (params.transcript.trim().length > 0) history = appendUser(history, params.transcript.trim());
      for (const text of context.queuedText) history = appendUser(history, text);
      // Speech that came after the typed text is the next utterance.
      return { history, utterance: context.laterUtterance, laterUtterance: undefined, queuedText: [] };
    }),
    commitTypedText: assign({ history: ({ context }, params: { text: string }) => appendUser(context.history, params.text.trim()) }),
    nextTurn: assign(({ context }) => ({
      turn: context.turn + 1,
      history: limitHistory(context.history, context.settings.history),
      heard: '',
      audioStarted: false,
    })),
    emitTurnStart: emit(({ context }, params: { source: 'voice' | 'text' }) => ({ type: 'turn.start' as const, replyId: context.turn, source: params.source })),
    emitCancelled: emit(({ context }) => ({ type: 'reply.done' as const, replyId: context.turn, text: context.heard, interrupted: true })),
    emitConfirmed: emit(({ context }, params: { by: Cause }) => ({
      type: 'interruption.confirmed' as const,
      replyId: context.turn,
      voicedMs: context.voicedMs,
      by: params.by,
    })),
    emitFalseInterruption: emit(({ context }) => ({ type: 'interruption.false' as const, replyId: context.turn, voicedMs: context.voicedMs })),
    recordHeardText: assign({ history: ({ context }) => appendAssistant(context.history, context.heard, true) }),
    emitReplyDone: emit(({ context }, params: { text: string; interrupted: boolean }) => ({
      type: 'reply.done' as const,
      replyId: context.turn,
      text: params.text,
      interrupted: params.interrupted,
    })),
    recordReply: assign({
      history: ({ context }, params: { text: string; interrupted: boolean }) => appendAssistant(context.history, params.text, params.interrupted),
    }),
    /** Provided by src/session: drop the transport's queued outbound audio (invariant 1). */
    clearOutput: () => undefined,
    interruptMotion: sendTo('motion', { type: 'motion.interrupt' as const }),
    pauseOutput: sendTo('reply', { type: 'output.pause' as const }),
    resumeOutput: sendTo('reply', { type: 'output.resume' as const }),
    emitReplyPaused: emit(({ context }) => ({ type: 'reply.paused' as const, replyId: context.turn })),
    emitReplyResumed: emit(({ context }) => ({ type: 'reply.resumed' as const, replyId: context.turn })),
    markHeard: assign({ heard: (_, params: { text: string }) => params.text }),
    markAudioStarted: assign({ audioStarted: true }),
    recordToolCalls: assign({
      history: ({ context }, params: { calls: readonly ToolCall[] }) => appendToolCalls(context.history, params.calls),
    }),
    emitToolCalls: emit(({ context }, params: { calls: readonly ToolCall[] }) => ({ type: 'tools.start' as const, replyId: context.turn, calls: params.calls })),
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
    emitSpeechEnd: emit((_, params: { atMs: number; durationMs: number; voicedMs: number }) => ({ type: 'vad.speechEnd' as const, ...params })),
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
    heard: '',
    audioStarted: false,
    voicedMs: 0,
    utterance: undefined,
    queuedText: [],
    laterUtterance: undefined,
  }),
  entry: ['spawnVad', 'spawnMotion'],
  initial: 'active',
  on: {
    'session.close': { target: '.closed', actions: { type: 'emitClosed', params: ({ event }) => ({ reason: event.reason ?? 'closed' }) } },
    'vad.error': { actions: { type: 'emitError', params: ({ event }) => ({ code: event.error.code, message: event.error.message }) } },
  },
  states: {
    active: {
      type: 'parallel',
      states: {
        voice: {
          initial: 'silent',
          on: {
            'vad.speechEnd': {
              target: '.silent',
              actions: [
                { type: 'setVoiced', params: ({ event }) => event },
                { type: 'emitSpeechEnd', params: ({ event }) => ({ atMs: event.atMs, durationMs: event.durationMs, voicedMs: event.voicedMs }) },
              ],
            },
            'vad.voiced': { actions: { type: 'setVoiced', params: ({ event }) => event } },
            // No transport, no audio: the utterance in progress is forgotten.
            'transport.lost': { target: '.silent', actions: 'resetVad' },
          },
          states: {
            silent: {
              on: {
                'vad.speechStart': {
                  target: 'speaking',
                  actions: [{ type: 'setVoiced', params: ({ event }) => event }, { type: 'emitSpeechStart', params: ({ event }) => ({ atMs: event.atMs }) }],
                },
              },
            },
            speaking: { on: { 'vad.speechPause': { target: 'paused', actions: { type: 'setVoiced', params: ({ event }) => event } } } },
            paused: { on: { 'vad.speechResume': { target: 'speaking', actions: { type: 'setVoiced', params: ({ event }) => event } } } },
          },
        },

        turn: {
          initial: 'listening',
          on: { 'stt.partial': { actions: { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) } } },
          states: {
            listening: {
              on: {
                'vad.speechEnd': { target: 'transcribing', actions: { type: 'keepUtterance', params: ({ event }) => ({ audio: event.audio }) } },
                'user.text': {
                  guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                  target: 'replying',
                  actions: ['dropUtterance', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                },
              },
            },
            transcribing: {
              // `pending`: more speech joins this utterance. `textQueued`: text was typed meanwhile; it
              // comes after this utterance, so later speech waits its turn (transcribed next).
              initial: 'pending',
              invoke: {
                src: 'stt',
                // Entered while the connection is suspended (a transcription finished meanwhile): the
                // reply starts with its output paused. The snapshot read is this machine's own, as it
                // was before this transition; the connection region does not change in it.
                input: ({ context, self }) => ({ audio: context.utterance ?? { samples: new Float32Array(0), sampleRate: 16_000 } }),
                // A transcript is announced (transcript.final) only when something was heard.
                onDone: [
                  { guard: { type: 'nothingToSay', params: final }, target: 'listening', actions: 'dropUtterance' },
                  { guard: and(['userTalking', 'transcriptEmpty']), target: 'listening', actions: { type: 'commitUserTurn', params: { transcript: '' } } },
                  { guard: 'userTalking', target: 'listening', actions: [{ type: 'emitFinal', params: final }, { type: 'commitUserTurn', params: transcript }] },
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
                    actions: [{ type: 'emitFinal', params: final }, { type: 'commitUserTurn', params: transcript }],
                  },
                  { guard: 'transcriptEmpty', target: 'replying', actions: [{ type: 'commitUserTurn', params: { transcript: '' } }, ...startReply('text')] },
                  {
                    target: 'replying',
                    actions: [{ type: 'emitFinal', params: final }, { type: 'commitUserTurn', params: transcript }, ...startReply('voice')],
                  },
                ],
                onError: [
                  { guard: not('hasQueuedText'), target: 'listening', actions: [sttError, 'dropUtterance'] },
                  { guard: 'userTalking', target: 'listening', actions: [sttError, { type: 'commitUserTurn', params: { transcript: '' } }] },
                  {
                    guard: 'hasLaterUtterance',
                    target: 'transcribing',
                    reenter: true,
                    actions: [sttError, { type: 'commitUserTurn', params: { transcript: '' } }],
                  },
                  { target: 'replying', actions: [sttError, { type: 'commitUserTurn', params: { transcript: '' } }, ...startReply('text')] },
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
                // The user went on speaking: this utterance and the next become one turn.
                pending: { on: { 'vad.speechStart': LISTENING } },
                textQueued: { on: { 'vad.speechEnd': { actions: { type: 'keepLaterUtterance', params: ({ event }) => ({ audio: event.audio }) } } } },
              },
            },

            replying: {
              invoke: {
                id: 'reply',
                src: 'reply',
                // Entered while the connection is suspended (a transcription finished meanwhile): the
                // reply starts with its output paused. The snapshot read is this machine's own, as it
                // was before this transition; the connection region does not change in it.
                input: ({ context, self }) => ({
                  replyId: context.turn,
                  messages: (context.systemPrompt.length > 0
                    ? [{ role: 'system', content: context.systemPrompt }, ...context.history]
                    : [...context.history]) satisfies ChatMessage[],
                  tools: context.tools,
                  settings: context.settings.reply,
                  outputPaused: self.getSnapshot().matches({ active: { connection: 'suspended' } }),
                }),
              },
              initial: 'thinking',
              on: {
                'reply.delta': { guard: 'isCurrentReply', actions: { type: 'emitDelta', params: ({ event }) => ({ replyId: event.replyId, text: event.text }) } },
                'reply.heard': { guard: 'isCurrentReply', actions: { type: 'markHeard', params: ({ event }) => ({ text: event.text }) } },
                'reply.audioStart': {
                  guard: 'isCurrentReply',
                  actions: ['markAudioStarted', { type: 'emitAudioStart', params: ({ event }) => ({ replyId: event.replyId, sampleRate: event.sampleRate }) }],
                },
                'reply.toolCalls': {
                  guard: 'isCurrentReply',
                  actions: [{ type: 'recordToolCalls', params: ({ event }) => ({ calls: event.calls }) }, { type: 'emitToolCalls', params: ({ event }) => ({ calls: event.calls }) }],
                },
                'reply.toolResults': {
                  guard: 'isCurrentReply',
                  actions: [
                    { type: 'recordToolResults', params: ({ event }) => ({ results: event.results }) },
                    { type: 'emitToolResults', params: ({ event }) => ({ results: event.results }) },
                  ],
                },
                'reply.done': [
                  { guard: UTTERANCE_WAITING, target: TRANSCRIBING, actions: COMMIT_REPLY },
                  { guard: 'isCurrentReply', target: LISTENING, actions: [...COMMIT_REPLY, 'dropUtterance'] },
                ],
                'reply.failed': [
                  { guard: UTTERANCE_WAITING, target: TRANSCRIBING, actions: FAIL_REPLY },
                  { guard: 'isCurrentReply', target: LISTENING, actions: [...FAIL_REPLY, 'dropUtterance'] },
                ],
                // Typed while the agent thinks, speaks or is interrupted: the reply is cut to what was
                // heard and the text starts the next one (re-entering stops this reply, invokes a new one).
                'user.text': {
                  guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                  target: 'replying',
                  reenter: true,
                  actions: [...cancelReply('text'), 'dropUtterance', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                },
                // The client's stop button: a confirmed barge-in.
                'user.interrupt': { target: LISTENING, actions: [...cancelReply('client'), 'dropUtterance'] },
              },
              states: {
                thinking: {
                  on: {
                    'reply.audioStart': {
                      guard: 'isCurrentReply',
                      target: 'speaking',
                      actions: ['markAudioStarted', { type: 'emitAudioStart', params: ({ event }) => ({ replyId: event.replyId, sampleRate: event.sampleRate }) }],
                    },
                    'vad.onset': 'interrupted',
                    'vad.speechStart': SPEECH_DURING_REPLY,
                    'vad.speechResume': SPEECH_DURING_REPLY,
                  },
                },
                speaking: {
                  on: {
                    'vad.onset': 'interrupted',
                    'vad.speechStart': SPEECH_DURING_REPLY,
                    'vad.speechResume': SPEECH_DURING_REPLY,
                  },
                },
                interrupted: {
                  // Output pauses at the first voiced window; the reply is cancelled only once the
                  // interruption is confirmed by voiced speech or by words.
                  entry: ['pauseOutput', 'emitReplyPaused'],
                  initial: 'provisional',
                  on: {
                    'stt.partial': {
                      guard: { type: 'enoughWords', params: ({ event }) => ({ text: event.text }) },
                      target: LISTENING,
                      actions: [...cancelReply('words'), { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) }],
                    },
                    // The drop cuts the interruption short; the reply stays, paused until a resume.
                    'transport.lost': [
                      { guard: 'audioStarted', target: 'speaking', actions: 'dropUtterance' },
                      { target: 'thinking', actions: 'dropUtterance' },
                    ],
                  },
                  states: {
                    // An onset the VAD has not confirmed yet (a click, a breath): not confirmed → resume at once.
                    provisional: {
                      on: {
                        'vad.onsetCancelled': resumeReply(),
                        'vad.speechStart': SPEECH_DURING_REPLY,
                      },
                    },
                    // The user is speaking; voiced time is counted by the VAD.
                    confirming: {
                      on: {
                        'vad.voiced': { guard: { type: 'voicedEnough', params: ({ event }) => ({ voicedMs: event.voicedMs }) }, ...CUT_BY_VOICE },
                        'vad.speechPause': 'paused',
                        'vad.speechEnd': { target: 'paused', actions: { type: 'keepUtterance', params: ({ event }) => ({ audio: event.audio }) } },
                      },
                    },
                    // The user stopped before the interruption was confirmed: if it stays so, it was a
                    // backchannel or a noise, and the reply goes on from where it paused.
                    paused: {
                      after: { falseInterruptionTimeout: resumeReply(['emitFalseInterruption', 'dropUtterance']) },
                      on: {
                        'vad.speechResume': SPEECH_DURING_REPLY,
                        'vad.speechStart': SPEECH_DURING_REPLY,
                        'vad.speechEnd': { actions: { type: 'keepUtterance', params: ({ event }) => ({ audio: event.audio }) } },
                      },
                    },
                  },
                },
              },
            },
          },
        },

        connection: {
          initial: 'online',
          states: {
            online: {
              on: {
                'transport.lost': [
                  { guard: 'replying', target: 'suspended', actions: 'pauseOutput' },
                  { target: 'suspended' },
                ],
              },
            },
            suspended: {
              after: { sessionTtl: { target: '#session.closed', actions: { type: 'emitClosed', params: { reason: 'expired' } } } },
              on: {
                'session.resume': [
                  { guard: not('resumeTokenValid'), actions: 'emitResumeRefused' },
                  { guard: 'replying', target: 'online', actions: ['resumeOutput', 'emitResumed'] },
                  { target: 'online', actions: 'emitResumed' },
                ],
              },
            },
          },
        },
      },
    },
    closed: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;
export type SessionActorRef = ActorRefFrom<SessionMachine>;
export type ReplyRef = ActorRefFrom<typeof replyMachine>;
