/**
 * The voice session statechart. It decides what happens next; src/session/ supplies the actors
 * that do the I/O:
 * - `vad`          spawned for the whole session: inbound audio → vad.onset / speechStart / speechPause /
 *                  speechResume / voiced / speechEnd (audio-stream time); takes `vad.reset`
 * - `stt`          spawned for the whole session: the recognizer. Each utterance is recognized from its
 *                  onset (stt.open) to its end of turn (stt.finish): stt.partial while the user speaks
 *                  (streaming recognizers), then stt.final
 * - `turnDetector` invoked while the end of turn is decided: the turn's text → probability that the
 *                  user has finished → how much silence ends the turn
 * - `reply`        the reply machine (machines/reply.ts), invoked by `replying`: leaving that state stops it
 * - `motion`       spawned for the whole session: the Motion Server link (a no-op without an avatar)
 *
 * `active` has four parallel regions:
 * - `voice`: what the user's microphone is doing — silent | speaking | paused (from the VAD).
 *   `vad.speechEnd` keeps its meaning: minSilenceMs of silence.
 * - `endpoint`: the end-of-turn decision for the utterance being heard — idle | hearing | deciding.
 *   It raises `eot.candidate` (the detector set its timer on some text), `eot.cancelled` and
 *   `eot.decided` (the turn is over) for the turn region.
 * - `turn`: the conversation — listening, transcribing (final transcripts awaited), replying
 *   (preemptive | thinking | speaking | interrupted).
 * - `connection`: online | suspended. The transport may drop at any point of a turn; the turn goes
 *   on (a reply keeps its place, output paused) and a resume continues it.
 * Public names (wire `session.state`): see publicState() in ./session-types.ts.
 */
import { type ActorRefFrom, and, assign, emit, fromCallback, fromPromise, not, raise, sendTo, setup, spawnChild, stateIn, stopChild } from 'xstate';
import type { ChatMessage, ToolCall } from '../src/providers/types.js';
import { appendAssistant, appendToolCalls, appendToolResult, appendUser, limitHistory } from './history.js';
import { replyMachine, type ToolResult } from './reply.js';
import { type PlaybookEvent, type PlaybookInput, type PlaybookParentEvent, type StageDataMap, toolOutcomes } from './playbook.js';

type StageChangeEvent = Extract<PlaybookParentEvent, { type: 'playbook.stage' }>;
import {
  DEFAULT_SESSION_SETTINGS,
  type EndOfTurnEvent,
  errorParams,
  type MotionChildCommand,
  type RecognizerCommand,
  type RecognizerInput,
  type SessionContext,
  type SessionEmitted,
  type SessionEvent,
  type SessionInput,
  type TurnDetectorActorInput,
  type TurnDetectorActorOutput,
  type VadChildCommand,
  type VadChildInput,
} from './session-types.js';
import {
  type Cause,
  cancelReply,
  COMMIT_REPLY,
  CUT_BY_VOICE,
  FAIL_REPLY,
  INTERRUPTED,
  LISTENING,
  REPLYING,
  resumeReply,
  ROUTING,
  SPEECH_DURING_REPLY,
  startReply,
  TRANSCRIBING,
} from './session-transitions.js';
import { sameWords, substantiveWordCount } from './words.js';
import { appendTurn, lastUserText, spokenText, trailingUserStart } from './turn-parts.js';

export * from './session-types.js';

/** The history within its limits; the stage's start moves with what was dropped from the front. */
function limited(context: SessionContext, stageRun: Partial<SessionContext['stageRun']> = {}): Pick<SessionContext, 'history' | 'stageRun'> {
  const history = limitHistory(context.history, context.settings.history);
  return { history, stageRun: { ...context.stageRun, ...stageRun, stageFrom: Math.max(0, context.stageRun.stageFrom - (context.history.length - history.length)) } };
}

function missing(name: string): never {
  throw new Error(`The session machine's '${name}' actor was not provided (use sessionMachine.provide({ actors }))`);
}

type EndBy = 'detector' | 'silence' | 'timeout';
const END = '#session.active.endpoint.idle';

/** End the turn of the open utterance: the recognizer finishes it; the turn region hears `eot.decided`. */
// Its final is awaited from this moment on (before the turn region hears of it), so nothing can
// answer the turn without it.
const endTurn = (by: EndBy) => ({ target: END, actions: ['finishOpen', { type: 'emitEndpoint', params: { by } }, 'raiseDecided', 'awaitOpen', 'closeOpen'] as const });
const DISCARD_OPEN = ['discardRecognition', 'closeOpen'] as const;

/** Answer the turn (when `guard` holds): its transcript is announced only when something was heard. */
const answerTurn = (guard: 'turnReady' | 'notAwaitingFinals') => [
  // With a playbook the turn is routed first: its transitions may change the stage the reply speaks in.
  { guard: and([guard, 'turnHasTranscript', 'hasPlaybook']), target: ROUTING, actions: ['emitTurnFinal', 'commitUserTurn', ...startReply('voice')] },
  { guard: and([guard, 'turnHasTranscript']), target: REPLYING, actions: ['emitTurnFinal', 'commitUserTurn', ...startReply('voice')] },
  { guard: and([guard, 'hasPlaybook']), target: ROUTING, actions: ['commitUserTurn', ...startReply('text')] },
  { guard, target: REPLYING, actions: ['commitUserTurn', ...startReply('text')] },
] as const;

export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    emitted: {} as SessionEmitted,
  },
  actors: {
    vad: fromCallback<VadChildCommand, VadChildInput>(() => missing('vad')),
    // A session without a recognizer hears nothing (text only) until src/session provides one.
    stt: fromCallback<RecognizerCommand, RecognizerInput>(() => undefined),
    turnDetector: fromPromise<TurnDetectorActorOutput, TurnDetectorActorInput>(async () => missing('turnDetector')),
    reply: replyMachine,
    // No avatar unless src/session provides a Motion Server link.
    motion: fromCallback<MotionChildCommand>(() => undefined),
    // A summary of a conversation (a `summarize` stage's earlier part), by the LLM; provided by src/session.
    summarize: fromPromise<string, { messages: readonly ChatMessage[] }>(async () => missing('summarize')),
    // No playbook unless src/session provides one (machines/playbook.ts).
    playbook: fromCallback<PlaybookEvent, PlaybookInput>(() => undefined),
  },
  guards: {
    /** Provided by src/session: a constant-time compare with the session's secret. The default refuses. */
    resumeTokenValid: (_: { context: SessionContext; event: SessionEvent }) => false,
    /** The event comes from the reply now invoked (a replaced one may still have events in flight). */
    isCurrentReply: ({ context, event }) => 'replyId' in event && event.replyId === context.turn,
    audioStarted: ({ context }) => context.replyProgress.audioStarted,
    textNotBlank: (_, params: { text: string }) => params.text.trim().length > 0,
    /** Voiced speech of the interruption reached minInterruptionMs. */
    voicedEnough: ({ context }, params: { voicedMs: number }) => params.voicedMs >= context.settings.minInterruptionMs,
    /** A partial of the interrupting utterance with minInterruptionWords words that are not backchannels. */
    openUtteranceHasEnoughWords: ({ context, event }) =>
      event.type === 'stt.partial' &&
      event.utterance === context.open &&
      context.settings.minInterruptionWords > 0 &&
      substantiveWordCount(event.text, context.settings.backchannelWords) >= context.settings.minInterruptionWords,
    replying: stateIn('#session.active.turn.replying'),
    speculatingState: stateIn('#session.active.turn.replying.preemptive'),
    /** The event is about the utterance being heard. */
    ofOpenUtterance: ({ context, event }) => 'utterance' in event && event.utterance === context.open,
    /** The event is the final of an utterance whose turn ended. */
    ofAwaited: ({ context, event }) => 'utterance' in event && typeof event.utterance === 'number' && context.awaiting.includes(event.utterance),
    spoke: ({ context }) => context.spoke,
    utteranceOpen: ({ context }) => context.open !== undefined,
    awaitingFinals: ({ context }) => context.awaiting.length > 0,
    notAwaitingFinals: ({ context }) => context.awaiting.length === 0,
    turnHasTranscript: ({ context }) => context.turnParts.some((part) => !part.typed),
    /** Nothing to reply to: no transcript and no typed text in this turn. */
    turnEmpty: ({ context }) => context.turnParts.length === 0,
    /** A turn whose transcripts are in while no utterance is open: it can be answered. */
    turnReady: ({ context }) => context.open === undefined && context.awaiting.length === 0 && context.turnParts.length > 0,
    hasText: ({ context }) => context.text.length > 0,
    /** No recognizer text will come before the end of the utterance: a batch recognizer, or one that heard nothing. */
    noTextComing: ({ context }) => !context.setup.streamingStt || (context.recognized && context.text.length === 0),
    voiceSilent: stateIn('#session.active.voice.silent'),
    /** A reply is paused for an interruption that is not decided yet: the end of turn waits for the verdict. */
    interruptionUndecided: stateIn('#session.active.turn.replying.interrupted'),
    /** A speculative reply may start on this candidate. */
    // (Not with a playbook: the turn's transitions may change the stage the reply must speak in.)
    canSpeculate: ({ context }) =>
      context.settings.preemptive && context.playbook === undefined && context.awaiting.length === 0 && context.turnParts.every((part) => !part.typed),
    /** The decision (or a new candidate) has the words the speculative reply was started on. */
    speculationHolds: ({ context }, params: { text: string }) => context.speculation !== undefined && sameWords(context.speculation, params.text),
    speculating: ({ context }) => context.speculation !== undefined,
    idleEnabled: ({ context }) => context.settings.userIdleTimeoutMs > 0,
    hasPlaybook: ({ context }) => context.playbook !== undefined,
    /** Typed text (not blank) in a session with a playbook: routed through it. */
    typedForPlaybook: ({ context, event }) => event.type === 'user.text' && event.text.trim().length > 0 && context.playbook !== undefined,
    /** A stage greeting is waiting and nothing else is going on: it can be spoken now. */
    greetingDue: ({ context }) => context.stageRun.say !== undefined && context.open === undefined && context.awaiting.length === 0 && context.turnParts.length === 0,
    idlePromptsLeft: ({ context }) => context.idle.prompts < context.settings.maxIdlePrompts,
  },
  delays: {
    falseInterruptionTimeout: ({ context }) => context.settings.falseInterruptionTimeoutMs,
    sessionTtl: ({ context }) => context.settings.sessionTtlMs,
    endpointDelay: ({ context }) => Math.max(0, context.endpoint.endpointAtMs - context.endpoint.audioMs),
    /** Waiting for recognizer text: up to maxEndpointingMs of silence after the edge. */
    textWait: ({ context }) => Math.max(0, context.endpoint.edgeMs + context.settings.maxEndpointingMs - context.endpoint.audioMs),
    userIdle: ({ context }) => context.settings.userIdleTimeoutMs,
  },
  actions: {
    spawnVad: spawnChild('vad', { id: 'vad', input: ({ context }) => ({ voicedMarksMs: [context.settings.minInterruptionMs] }) }),
    spawnStt: spawnChild('stt', { id: 'stt', input: {} }),
    spawnPlaybook: spawnChild('playbook', { id: 'playbook', input: ({ context }) => context.playbook ?? {} }),
    notifyUserTurn: sendTo('playbook', ({ context }): PlaybookEvent => ({ type: 'playbook.userTurn', text: lastUserText(context.history), history: context.history })),
    countCheck: assign(({ context }) => ({ stageRun: { ...context.stageRun, pendingChecks: context.stageRun.pendingChecks + 1 } })),
    checkDone: assign(({ context }) => ({ stageRun: { ...context.stageRun, pendingChecks: Math.max(0, context.stageRun.pendingChecks - 1) } })),
    notifyReplyDone: sendTo('playbook', ({ context }, params: { text: string }): PlaybookEvent => ({ type: 'playbook.replyDone', text: params.text, history: context.history })),
    notifyToolResults: sendTo('playbook', ({ context }, params: { results: readonly ToolResult[] }): PlaybookEvent => ({
      type: 'playbook.toolResults',
      results: toolOutcomes(context.history, params.results),
      history: context.history,
    })),
    setStage: assign(({ context }, params: { event: StageChangeEvent }) => ({
      stage: params.event.stage,
      stageRun: {
        ...context.stageRun,
        // A reset (or summarize) stage starts with the user turn that led to it (if that was what changed the stage).
        stageFrom: params.event.stage !== undefined && params.event.stage.contextStrategy !== 'append' ? trailingUserStart(context.history) : context.stageRun.stageFrom,
        summary: undefined,
        // The new stage's greeting is spoken once: as the answer of the turn that led here, or when the agent is free.
        // A resumed stage (a session restored on another server) was greeted already: its history says so.
        say: params.event.reason.kind === 'resume' ? context.stageRun.say : (params.event.stage?.greeting ?? context.stageRun.say),
      },
      playbook: params.event.to === null ? { ...context.playbook, data: params.event.data } : { stage: params.event.to, data: params.event.data },
    })),
    emitStageChange: emit((_, params: { event: StageChangeEvent }) => ({
      type: 'stage.change' as const,
      from: params.event.from,
      to: params.event.to,
      reason: params.event.reason,
      data: params.event.stage?.data,
      stages: params.event.data,
    })),
    /** A stage's data changed: kept for the record, and in the stage view when it is the current stage's. */
    setStageData: assign(({ context }, params: { stage: string; data: StageDataMap }) => ({
      playbook: { ...context.playbook, data: params.data },
      stage: context.stage?.id === params.stage ? { ...context.stage, data: params.data[params.stage] } : context.stage,
    })),
    emitStageData: emit((_, params: { stage: string; data: StageDataMap }) => ({ type: 'stage.data' as const, stage: params.stage, data: params.data[params.stage], stages: params.data })),
    forwardSetData: sendTo('playbook', ({ event }) => event),
    /** A summarize stage: the LLM summarizes what came before the stage (replies see the reset view until it is ready). */
    summarizeEarlier: spawnChild('summarize', {
      id: 'summarize',
      input: ({ context }) => ({ messages: context.history.slice(0, context.stageRun.stageFrom) }),
    }),
    stopSummarizing: stopChild('summarize'),
    takeSay: assign(({ context }) => ({ stageRun: { ...context.stageRun, replySay: context.stageRun.say, say: undefined } })),
    // `systemId` lets the reply's TTS forward synthesized audio to the link as it arrives.
    // Its avatar frames go to the client feed beside the machine, not through it (notifyParent: false).
    spawnMotion: spawnChild('motion', { id: 'motion', systemId: 'motion', input: { notifyParent: false } }),
    resetVad: sendTo('vad', { type: 'vad.reset' } satisfies VadChildCommand),
    setVoiced: assign(({ context }, params: { voicedMs: number }) => ({ replyProgress: { ...context.replyProgress, voicedMs: params.voicedMs } })),

    // --- the utterance being heard (endpoint region) -------------------------------------------
    openUtterance: assign(({ context }) => ({
      utterances: context.utterances + 1,
      open: context.utterances + 1,
      spoke: false,
      text: '',
      recognized: false,
    })),
    tellRecognizerOpen: sendTo('stt', ({ context }, params: { atMs: number }): RecognizerCommand => ({
      type: 'stt.open',
      utterance: context.open ?? context.utterances,
      atMs: params.atMs,
    })),
    markSpoke: assign({ spoke: true }),
    /** The user went silent at `edgeMs` (audio time); it is now `nowMs`. */
    setEdge: assign(({ context }, params: { edgeMs: number; nowMs: number }) => ({ endpoint: { ...context.endpoint, edgeMs: params.edgeMs, audioMs: params.nowMs } })),
    setAudioNow: assign(({ context }, params: { nowMs: number }) => ({ endpoint: { ...context.endpoint, audioMs: Math.max(context.endpoint.audioMs, params.nowMs) } })),
    hintPause: sendTo('stt', ({ context }): RecognizerCommand => ({ type: 'stt.pause', utterance: context.open ?? 0 })),
    setText: assign((_, params: { text: string }) => ({ text: params.text, recognized: true })),
    /** The stream of the open utterance failed: what it said is stale, and nothing more will come before the end. */
    forgetStreamText: assign({ text: '', recognized: true }),
    setEndpointDelay: assign(({ context }, params: { output: TurnDetectorActorOutput }) => ({
      endpoint: { ...context.endpoint, endProbability: params.output.probability, endpointAtMs: context.endpoint.edgeMs + params.output.delayMs },
    })),
    /** The detector failed: the longest wait (never an early cut). */
    setLongestDelay: assign(({ context }) => ({ endpoint: { ...context.endpoint, endProbability: 0, endpointAtMs: context.endpoint.edgeMs + context.settings.maxEndpointingMs } })),
    raiseCandidate: raise(({ context }): EndOfTurnEvent => ({ type: 'eot.candidate', utterance: context.open ?? 0, text: context.text })),
    raiseCancelled: raise(({ context }): EndOfTurnEvent => ({ type: 'eot.cancelled', utterance: context.open ?? 0 })),
    /** The end of turn (see endTurn()): the recognizer finishes the utterance, the decision is told. */
    finishOpen: sendTo('stt', ({ context }): RecognizerCommand => ({ type: 'stt.finish', utterance: context.open ?? -1 })),
    emitEndpoint: emit(({ context }, params: { by: EndBy }) => {
      const decidedAt =
        params.by === 'detector'
          ? Math.max(context.endpoint.audioMs, context.endpoint.endpointAtMs)
          : params.by === 'timeout'
            ? Math.max(context.endpoint.audioMs, context.endpoint.edgeMs + context.settings.maxEndpointingMs)
            : context.endpoint.audioMs;
      return {
        type: 'turn.endpoint' as const,
        utterance: context.open ?? -1,
        edgeMs: context.endpoint.edgeMs,
        endpointingMs: Math.max(0, decidedAt - context.endpoint.edgeMs),
        probability: params.by === 'detector' ? context.endpoint.endProbability : undefined,
        by: params.by,
      };
    }),
    raiseDecided: raise(({ context }): EndOfTurnEvent => ({ type: 'eot.decided', utterance: context.open ?? -1, text: context.text })),
    /** Forget the open utterance (its recognition is aborted). */
    discardRecognition: sendTo('stt', ({ context }): RecognizerCommand => ({ type: 'stt.discard', utterance: context.open ?? -1 })),
    closeOpen: assign({ open: undefined, text: '', recognized: false }),

    // --- the turn --------------------------------------------------------------------------------
    // Its place in the turn is taken now, so what is typed while it is transcribed comes after it.
    awaitOpen: assign(({ context }) =>
      context.open === undefined || context.awaiting.includes(context.open)
        ? {}
        : { awaiting: [...context.awaiting, context.open], turnParts: [...context.turnParts, { text: '', typed: false, utterance: context.open }] },
    ),
    collectFinal: assign(({ context }, params: { utterance: number; text: string }) => ({
      awaiting: context.awaiting.filter((id) => id !== params.utterance),
      turnParts: context.turnParts.flatMap((part) =>
        part.utterance !== params.utterance ? [part] : params.text.trim().length > 0 ? [{ text: params.text.trim(), typed: false }] : [],
      ),
    })),
    dropFinal: assign(({ context }, params: { utterance: number }) => ({
      awaiting: context.awaiting.filter((id) => id !== params.utterance),
      turnParts: context.turnParts.filter((part) => part.utterance !== params.utterance),
    })),
    queueText: assign({ turnParts: ({ context }, params: { text: string }) => [...context.turnParts, { text: params.text.trim(), typed: true }] }),
    clearTurn: assign({ turnParts: [] }),
    /** The turn becomes user messages in order (speech that follows speech is one message); the turn is consumed. */
    commitUserTurn: assign(({ context }) => ({ history: appendTurn(context.history, context.turnParts), turnParts: [] })),
    emitTurnFinal: emit(({ context }) => ({ type: 'transcript.final' as const, text: spokenText(context.turnParts) })),
    commitTypedText: assign({ history: ({ context }, params: { text: string }) => appendUser(context.history, params.text.trim()) }),
    nextTurn: assign(({ context }) => ({
      turn: context.turn + 1,
      ...limited(context, { replySay: undefined }),
      replyProgress: { ...context.replyProgress, heard: '', audioStarted: false },
      idle: { ...context.idle, nudge: undefined },
    })),
    emitTurnStart: emit(({ context }, params: { source: 'voice' | 'text' | 'idle' | 'stage' }) => ({ type: 'turn.start' as const, replyId: context.turn, source: params.source })),
    resetIdle: assign(({ context }) => ({ idle: { ...context.idle, prompts: 0 } })),

    // --- speculative (preemptive) replies ---------------------------------------------------------
    /** A speculative reply on `text`: a reply id of its own, nothing in the history yet. */
    speculate: assign(({ context }, params: { text: string }) => ({
      speculation: params.text,
      turn: context.turn + 1,
      replyProgress: { ...context.replyProgress, heard: '', audioStarted: false },
      idle: { ...context.idle, nudge: undefined },
    })),
    emitSpeculation: emit(({ context }, params: { outcome: 'started' | 'used' | 'discarded' }) => ({
      type: 'reply.preemptive' as const,
      replyId: context.turn,
      outcome: params.outcome,
    })),
    endSpeculation: assign({ speculation: undefined }),
    /** The speculation is the turn: its text is the transcript; the reply goes out. */
    commitSpeculation: assign(({ context }, params: { text: string }) => ({
      turnParts: params.text.trim().length > 0 ? [...context.turnParts, { text: params.text.trim(), typed: false }] : context.turnParts,
      speculation: undefined,
    })),
    commitReply: sendTo('reply', { type: 'reply.commit' as const }),
    emitCommittedTurnStart: emit(({ context }) => ({ type: 'turn.start' as const, replyId: context.turn, source: 'voice' as const })),
    limitHistory: assign(({ context }) => limited(context)),

    // --- idle ------------------------------------------------------------------------------------
    emitIdle: emit(({ context }) => ({ type: 'session.idle' as const, prompts: context.idle.prompts })),
    countIdlePrompt: assign(({ context }) => ({ idle: { prompts: context.idle.prompts + 1, nudge: context.settings.idlePrompt } })),

    // --- replies -----------------------------------------------------------------------------------
    emitCancelled: emit(({ context }) => ({ type: 'reply.done' as const, replyId: context.turn, text: context.replyProgress.heard, interrupted: true })),
    emitConfirmed: emit(({ context }, params: { by: Cause }) => ({
      type: 'interruption.confirmed' as const,
      replyId: context.turn,
      voicedMs: context.replyProgress.voicedMs,
      by: params.by,
    })),
    emitFalseInterruption: emit(({ context }) => ({ type: 'interruption.false' as const, replyId: context.turn, voicedMs: context.replyProgress.voicedMs })),
    recordHeardText: assign({ history: ({ context }) => appendAssistant(context.history, context.replyProgress.heard, true) }),
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
    markHeard: assign(({ context }, params: { text: string }) => ({ replyProgress: { ...context.replyProgress, heard: params.text } })),
    markAudioStarted: assign(({ context }) => ({ replyProgress: { ...context.replyProgress, audioStarted: true } })),
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
    emitError: emit((_, params: { code: string; message: string; fatal?: boolean; provider?: string }) => ({
      type: 'error' as const,
      code: params.code,
      message: params.message,
      fatal: params.fatal ?? false,
      ...(params.provider === undefined ? {} : { provider: params.provider }),
    })),
    emitResumed: emit({ type: 'session.resumed' as const }),
    emitResumeRefused: emit({ type: 'session.resumeRefused' as const }),
    emitClosed: emit((_, params: { reason: string }) => ({ type: 'session.closed' as const, reason: params.reason })),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({
    settings: input.settings ?? DEFAULT_SESSION_SETTINGS,
    setup: { systemPrompt: input.systemPrompt ?? '', tools: input.tools ?? [], streamingStt: input.streamingStt ?? false },
    history: input.history ?? [],
    turn: 0,
    replyProgress: { heard: '', audioStarted: false, voicedMs: 0 },
    utterances: 0,
    open: undefined,
    spoke: false,
    text: '',
    recognized: false,
    endpoint: { edgeMs: 0, audioMs: 0, endpointAtMs: 0, endProbability: 0 },
    awaiting: [],
    turnParts: [],
    speculation: undefined,
    idle: { prompts: 0, nudge: undefined },
    playbook: input.playbook,
    stage: undefined,
    stageRun: { say: undefined, replySay: undefined, stageFrom: 0, summary: undefined, pendingChecks: 0 },
  }),
  entry: ['spawnVad', 'spawnStt', 'spawnMotion', 'spawnPlaybook'],
  initial: 'active',
  on: {
    'session.close': { target: '.closed', actions: { type: 'emitClosed', params: ({ event }) => ({ reason: event.reason ?? 'closed' }) } },
    'vad.error': { actions: { type: 'emitError', params: ({ event }) => ({ code: event.error.code, message: event.error.message }) } },
    // A check that came back after its turn was answered some other way.
    'playbook.checked': { actions: 'checkDone' },
    'playbook.setData': { actions: 'forwardSetData' },
    'playbook.data': {
      actions: [
        { type: 'setStageData', params: ({ event }) => ({ stage: event.stage, data: event.data }) },
        { type: 'emitStageData', params: ({ event }) => ({ stage: event.stage, data: event.data }) },
      ],
    },
    'playbook.stage': [
      {
        guard: ({ context, event }) => event.stage?.contextStrategy === 'summarize' && trailingUserStart(context.history) > 0,
        actions: ['stopSummarizing', { type: 'emitStageChange', params: ({ event }) => ({ event }) }, { type: 'setStage', params: ({ event }) => ({ event }) }, 'summarizeEarlier'],
      },
      { actions: ['stopSummarizing', { type: 'emitStageChange', params: ({ event }) => ({ event }) }, { type: 'setStage', params: ({ event }) => ({ event }) }] },
    ],
    'xstate.done.actor.summarize': { actions: assign(({ context, event }) => ({ stageRun: { ...context.stageRun, summary: event.output.trim() || undefined } })) },
    // Without a summary the stage's replies see the reset view; the failure is told, not fatal.
    'xstate.error.actor.summarize': { actions: { type: 'emitError', params: ({ event }) => ({ ...errorParams(event.error, 'provider_failed'), message: `summarizing the conversation failed: ${errorParams(event.error, 'provider_failed').message}` }) } },
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

        endpoint: {
          initial: 'idle',
          on: {
            'transport.lost': { target: '.idle', actions: DISCARD_OPEN },
            // Not fatal (e.g. a stream failed and batch transcription takes over): told, the turn goes on.
            'stt.warning': { actions: { type: 'emitError', params: ({ event }) => event.error } },
          },
          states: {
            // No utterance open.
            idle: {
              on: {
                'vad.onset': {
                  target: 'hearing',
                  actions: ['openUtterance', { type: 'tellRecognizerOpen', params: ({ event }) => ({ atMs: event.atMs }) }, 'resetIdle'],
                },
                // An onset that came while the previous turn was being decided, confirmed after the
                // decision: it is a turn of its own, heard from its onset.
                'vad.speechStart': {
                  target: 'hearing',
                  actions: ['openUtterance', { type: 'tellRecognizerOpen', params: ({ event }) => ({ atMs: event.atMs }) }, 'markSpoke', 'resetIdle'],
                },
              },
            },
            // The user is speaking (or an onset is not confirmed yet).
            hearing: {
              // The turn region dropped the utterance (a backchannel, typed text took over).
              always: { guard: not('utteranceOpen'), target: 'idle' },
              on: {
                'vad.onsetCancelled': { guard: not('spoke'), target: 'idle', actions: DISCARD_OPEN },
                'vad.speechStart': { actions: 'markSpoke' },
                'stt.partial': {
                  guard: 'ofOpenUtterance',
                  actions: [
                    { type: 'setText', params: ({ event }) => event },
                    { type: 'setAudioNow', params: ({ event }) => ({ nowMs: event.atMs }) },
                  ],
                },
                'stt.warning': { guard: 'ofOpenUtterance', actions: [{ type: 'emitError', params: ({ event }) => event.error }, 'forgetStreamText'] },
                'vad.speechPause': {
                  target: 'deciding',
                  actions: [{ type: 'setEdge', params: ({ event }) => ({ edgeMs: event.atMs, nowMs: event.atMs + event.silenceMs }) }, 'hintPause'],
                },
                'vad.speechEnd': {
                  target: 'deciding',
                  actions: { type: 'setEdge', params: ({ event }) => ({ edgeMs: event.atMs, nowMs: event.atMs + event.silenceMs }) },
                },
              },
            },
            // The user is silent: is the turn over? (docs/turn-detection.md)
            deciding: {
              always: { guard: not('utteranceOpen'), target: 'idle' },
              initial: 'checking',
              on: {
                'vad.speechResume': { target: 'hearing', actions: 'raiseCancelled' },
                'vad.speechStart': { target: 'hearing', actions: ['raiseCancelled', 'markSpoke'] },
                'stt.partial': {
                  guard: 'ofOpenUtterance',
                  target: '.checking',
                  actions: [
                    { type: 'setText', params: ({ event }) => event },
                    { type: 'setAudioNow', params: ({ event }) => ({ nowMs: event.atMs }) },
                    'raiseCancelled',
                  ],
                },
                'vad.speechEnd': { target: '.checking', actions: { type: 'setAudioNow', params: ({ event }) => ({ nowMs: event.atMs + event.silenceMs }) } },
                // A new onset after the VAD ended the utterance: the user may be going on. The decision
                // waits for the VAD's verdict (a recognizer may hear the new words first).
                'vad.onset': '.resuming',
                // The stream failed (batch transcription takes over): its last interim is stale and no
                // more text will come before the end.
                'stt.warning': {
                  guard: 'ofOpenUtterance',
                  target: '.checking',
                  actions: [{ type: 'emitError', params: ({ event }) => event.error }, 'forgetStreamText', 'raiseCancelled'],
                },
              },
              states: {
                resuming: {
                  on: {
                    'vad.onsetCancelled': 'checking',
                    'stt.partial': {
                      guard: 'ofOpenUtterance',
                      actions: [
                        { type: 'setText', params: ({ event }) => event },
                        { type: 'setAudioNow', params: ({ event }) => ({ nowMs: event.atMs }) },
                      ],
                    },
                  },
                },
                checking: {
                  always: [
                    { guard: 'noTextComing', target: 'awaitingSilence' },
                    { guard: not('hasText'), target: 'awaitingText' },
                    { target: 'detecting' },
                  ],
                },
                // No text before the end: the VAD's minSilenceMs decides (vad.speechEnd).
                awaitingSilence: {
                  always: [{ guard: and(['voiceSilent', not('interruptionUndecided')]), ...endTurn('silence') }],
                },
                // A streaming recognizer has not said anything yet: wait for it, up to maxEndpointingMs.
                awaitingText: {
                  after: { textWait: [{ guard: not('interruptionUndecided'), ...endTurn('timeout') }, { target: 'held' }] },
                },
                detecting: {
                  invoke: {
                    src: 'turnDetector',
                    input: ({ context }) => ({
                      utterance: context.open ?? 0,
                      text: context.text,
                      history: context.history,
                      minEndpointingMs: context.settings.minEndpointingMs,
                      maxEndpointingMs: context.settings.maxEndpointingMs,
                    }),
                    onDone: { target: 'waiting', actions: { type: 'setEndpointDelay', params: ({ event }) => ({ output: event.output }) } },
                    onError: { target: 'waiting', actions: 'setLongestDelay' },
                  },
                },
                waiting: {
                  entry: 'raiseCandidate',
                  after: { endpointDelay: [{ guard: not('interruptionUndecided'), ...endTurn('detector') }, { target: 'held' }] },
                },
                // Decided while a reply is paused for an undecided interruption: the verdict comes first
                // (a false interruption drops the utterance; a confirmed one ends its turn now).
                held: {
                  always: [{ guard: not('interruptionUndecided'), ...endTurn('detector') }],
                },
              },
            },
          },
        },

        turn: {
          initial: 'listening',
          on: {
            'stt.partial': { guard: 'ofOpenUtterance', actions: { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) } },
            'stt.final': { guard: 'ofAwaited', actions: { type: 'collectFinal', params: ({ event }) => event } },
            'stt.failed': {
              guard: 'ofAwaited',
              actions: [{ type: 'dropFinal', params: ({ event }) => event }, { type: 'emitError', params: ({ event }) => event.error }],
            },
          },
          states: {
            listening: {
              // Transcripts of this turn are in and the user is not speaking any more: answer. A stage
              // greeting waiting for the agent to be free is spoken now.
              always: [
                ...answerTurn('turnReady'),
                { guard: 'greetingDue', target: REPLYING, actions: [...startReply('stage'), 'takeSay'] },
              ],
              on: {
                'eot.decided': 'transcribing',
                'eot.candidate': {
                  guard: 'canSpeculate',
                  target: 'replying.preemptive',
                  actions: [{ type: 'speculate', params: ({ event }) => ({ text: event.text }) }, { type: 'emitSpeculation', params: { outcome: 'started' } }],
                },
                'user.text': [
                  {
                    guard: 'typedForPlaybook',
                    target: ROUTING,
                    actions: [...DISCARD_OPEN, 'resetIdle', 'commitUserTurn', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                  },
                  {
                    guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                    target: REPLYING,
                    actions: [...DISCARD_OPEN, 'resetIdle', 'commitUserTurn', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                  },
                ],
              },
              initial: 'waiting',
              states: {
                waiting: {
                  on: { 'vad.onset': { target: 'waiting', reenter: true } },
                  after: {
                    userIdle: [
                      { guard: and(['idleEnabled', not('utteranceOpen'), not('awaitingFinals'), 'idlePromptsLeft']), target: REPLYING, actions: ['emitIdle', ...startReply('idle'), 'countIdlePrompt'] },
                      { guard: and(['idleEnabled', not('utteranceOpen'), not('awaitingFinals')]), target: '#session.closed', actions: ['emitIdle', { type: 'emitClosed', params: { reason: 'idle' } }] },
                    ],
                  },
                },
              },
            },

            // A playbook checks its transitions on the user turn just committed; the reply then speaks in
            // the stage they lead to (its greeting, if it has one, is the answer).
            routing: {
              entry: ['notifyUserTurn', 'countCheck'],
              on: {
                // Every turn sent has been checked: the stage is the one they lead to.
                'playbook.checked': [
                  { guard: ({ context }) => context.stageRun.pendingChecks <= 1, target: 'replying', actions: ['checkDone', 'takeSay'] },
                  { actions: 'checkDone' },
                ],
                'user.text': {
                  guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                  target: 'routing',
                  reenter: true,
                  actions: ['resetIdle', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }],
                },
              },
            },

            // The end of turn was decided; the final transcript(s) are awaited.
            transcribing: {
              initial: 'pending',
              always: [
                // The user speaks again: the turn goes on (its transcripts so far are kept).
                { guard: and([not('awaitingFinals'), 'utteranceOpen']), target: 'listening' },
                { guard: and([not('awaitingFinals'), 'turnEmpty']), target: 'listening', actions: 'clearTurn' },
                ...answerTurn('notAwaitingFinals'),
              ],
              on: {
                'user.text': {
                  guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                  target: '.textQueued',
                  actions: [{ type: 'queueText', params: ({ event }) => ({ text: event.text }) }, 'resetIdle'],
                },
              },
              states: {
                pending: {},
                // Text was typed meanwhile: it joins this turn, after the transcript.
                textQueued: {},
              },
            },

            replying: {
              invoke: {
                id: 'reply',
                // Its tools actor finds it by this id to tell each call's end as it happens.
                systemId: 'reply',
                src: 'reply',
                // Entered while the connection is suspended (a transcription finished meanwhile): the
                // reply starts with its output paused. The snapshot read is this machine's own, as it
                // was before this transition; the connection region does not change in it.
                input: ({ context, self }) => {
                  const speculative = context.speculation !== undefined;
                  // A `reset` stage's replies see the conversation from the stage's entry on.
                  const since = context.stageRun.stageFrom > 0 ? context.history.slice(context.stageRun.stageFrom) : context.history;
                  // A summarize stage: what came before, in a few sentences, then the conversation since.
                  const conversation: readonly ChatMessage[] =
                    context.stageRun.summary === undefined ? since : [{ role: 'system', content: `Earlier in this conversation: ${context.stageRun.summary}` }, ...since];
                  const history = speculative
                    ? appendTurn(conversation, [...context.turnParts, { text: context.speculation ?? '', typed: false }])
                    : conversation;
                  // A playbook stage brings its own prompt (the playbook's global one, then the stage's) and tools.
                  const prompt = context.stage?.systemPrompt ?? context.setup.systemPrompt;
                  const system: ChatMessage[] = [...(prompt.length > 0 ? [{ role: 'system' as const, content: prompt }] : [])];
                  const nudge: ChatMessage[] = context.idle.nudge === undefined ? [] : [{ role: 'system', content: context.idle.nudge }];
                  return {
                    replyId: context.turn,
                    messages: [...system, ...history, ...nudge],
                    tools: context.stage?.tools ?? context.setup.tools,
                    settings: context.settings.reply,
                    outputPaused: self.getSnapshot().matches({ active: { connection: 'suspended' } }),
                    held: speculative,
                    ...(context.stageRun.replySay === undefined ? {} : { say: context.stageRun.replySay }),
                    ...(context.stage?.llm === undefined ? {} : { llm: context.stage.llm }),
                  };
                },
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
                // Each call's end goes out as it happens; the round is recorded once it is complete.
                'tools.callEnded': {
                  guard: 'isCurrentReply',
                  actions: { type: 'emitToolResults', params: ({ event }) => ({ results: [event.result] }) },
                },
                'reply.toolResults': {
                  guard: 'isCurrentReply',
                  actions: [
                    { type: 'recordToolResults', params: ({ event }) => ({ results: event.results }) },

                    // Committed: a transition they lead to takes effect now, never half a stage.
                    { type: 'notifyToolResults', params: ({ event }) => ({ results: event.results }) },
                  ],
                },
                // The reply ended by itself. An utterance still open (the user spoke during an
                // undecided interruption) is their next turn: listening decides its end.
                'reply.done': {
                  guard: 'isCurrentReply',
                  target: LISTENING,
                  actions: [...COMMIT_REPLY, { type: 'notifyReplyDone', params: ({ event }) => ({ text: event.text }) }],
                },
                'reply.failed': { guard: 'isCurrentReply', target: LISTENING, actions: FAIL_REPLY },
                // Typed while the agent thinks, speaks or is interrupted: the reply is cut to what was
                // heard and the text starts the next one (re-entering stops this reply, invokes a new one).
                'user.text': [
                  {
                    guard: 'typedForPlaybook',
                    target: ROUTING,
                    actions: [...cancelReply('text'), ...DISCARD_OPEN, 'resetIdle', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                  },
                  {
                    guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                    target: 'replying',
                    reenter: true,
                    actions: [...cancelReply('text'), ...DISCARD_OPEN, 'resetIdle', { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) }, ...startReply('text')],
                  },
                ],
                // The client's stop button: a confirmed barge-in.
                'user.interrupt': { target: LISTENING, actions: [...cancelReply('client'), ...DISCARD_OPEN] },
              },
              states: {
                // A speculative reply on a candidate end of turn: LLM and TTS run, nothing leaves. The
                // decision commits it when its words still hold; anything else discards it (leaving
                // `replying` stops the reply: the LLM call is aborted, nothing was recorded or sent).
                preemptive: {
                  on: {
                    // The utterance it was speculating on is gone with the transport.
                    'transport.lost': { target: LISTENING, actions: [{ type: 'emitSpeculation', params: { outcome: 'discarded' } }, 'endSpeculation'] },
                    'eot.cancelled': { target: LISTENING, actions: [{ type: 'emitSpeculation', params: { outcome: 'discarded' } }, 'endSpeculation'] },
                    'eot.candidate': [
                      { guard: { type: 'speculationHolds', params: ({ event }) => ({ text: event.text }) } },
                      {
                        target: REPLYING,
                        reenter: true,
                        actions: [
                          { type: 'emitSpeculation', params: { outcome: 'discarded' } },
                          { type: 'speculate', params: ({ event }) => ({ text: event.text }) },
                          { type: 'emitSpeculation', params: { outcome: 'started' } },
                        ],
                      },
                    ],
                    'eot.decided': [
                      {
                        guard: { type: 'speculationHolds', params: ({ event }) => ({ text: event.text }) },
                        target: 'thinking',
                        actions: [
                          // The decision's text is the transcript: the recognizer's final is not waited for.
                          { type: 'dropFinal', params: ({ event }) => event },
                          { type: 'commitSpeculation', params: ({ event }) => ({ text: event.text }) },
                          'emitTurnFinal',
                          'commitUserTurn',
                          'limitHistory',
                          'emitCommittedTurnStart',
                          { type: 'emitSpeculation', params: { outcome: 'used' } },
                          'commitReply',
                        ],
                      },
                      {
                        target: TRANSCRIBING,
                        actions: [
                          { type: 'emitSpeculation', params: { outcome: 'discarded' } },
                          'endSpeculation',
                        ],
                      },
                    ],
                    'reply.failed': { guard: 'isCurrentReply', target: LISTENING, actions: [{ type: 'emitSpeculation', params: { outcome: 'discarded' } }, 'endSpeculation'] },
                    'user.text': {
                      guard: { type: 'textNotBlank', params: ({ event }) => ({ text: event.text }) },
                      target: REPLYING,
                      reenter: true,
                      actions: [
                        { type: 'emitSpeculation', params: { outcome: 'discarded' } },
                        'endSpeculation',
                        ...DISCARD_OPEN,
                        'resetIdle',
                        'commitUserTurn',
                        { type: 'commitTypedText', params: ({ event }) => ({ text: event.text }) },
                        ...startReply('text'),
                      ],
                    },
                    // Nothing is playing yet: the stop button has nothing to stop.
                    'user.interrupt': {},
                  },
                },
                thinking: {
                  always: [{ guard: 'speculating', target: 'preemptive' }],
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
                      guard: 'openUtteranceHasEnoughWords',
                      target: LISTENING,
                      actions: [...cancelReply('words'), { type: 'emitPartial', params: ({ event }) => ({ text: event.text }) }],
                    },
                    // The drop cuts the interruption short; the reply stays, paused until a resume.
                    'transport.lost': [{ guard: 'audioStarted', target: 'speaking' }, { target: 'thinking' }],
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
                        'vad.speechEnd': 'paused',
                      },
                    },
                    // The user stopped before the interruption was confirmed: if it stays so, it was a
                    // backchannel or a noise, and the reply goes on from where it paused.
                    paused: {
                      after: { falseInterruptionTimeout: resumeReply(['emitFalseInterruption', ...DISCARD_OPEN]) },
                      on: {
                        'vad.speechResume': SPEECH_DURING_REPLY,
                        'vad.speechStart': SPEECH_DURING_REPLY,
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
                  // (A speculative reply is discarded by the same event: nothing to pause.)
                  { guard: and(['replying', not('speculatingState')]), target: 'suspended', actions: 'pauseOutput' },
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
