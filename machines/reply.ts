/**
 * One agent reply: LLM stream → segments → TTS (the next segment is synthesized while the previous
 * one plays) → playout. The reply is one actor, so cancelling it (stopping the actor) aborts the
 * LLM, the TTS and the playout together. It tracks which words were actually played so the
 * session can write exactly that into the history when the user cuts it off.
 *
 * Child actors, provided by src/session/:
 * - `llm`     fromCallback: streams one completion; sends llm.text / llm.toolCall / llm.usage / llm.done / llm.error
 * - `tools`   fromPromise: runs the tool calls of one round, resolves with their results
 * - `tts`     fromCallback: synthesizes one segment; streams its audio straight to the playout (and
 *             the avatar link) given in its input — audio never goes through this machine — and
 *             sends tts.rewrite / tts.done / tts.error
 * - `playout` fromCallback: paces audio to the transport; receives playout.*, sends playout.started / word / segmentDone / drained
 */
import { type AnyActorRef, and, assign, emit, enqueueActions, fromCallback, fromPromise, not, sendParent, sendTo, setup, stateIn } from 'xstate';
import type { ChatMessage, LlmUsage, ToolCall, ToolSpec, WordTiming } from '../src/providers/types.js';
import { words } from './words.js';
import { cutSegments, DEFAULT_SEGMENT_OPTIONS, type SegmentOptions } from './segments.js';

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  /** The kind of provider that failed (`stt`, `llm`, `tts`), when a provider did: it names it to the client. */
  readonly provider?: string;
}

export interface ToolResult {
  readonly callId: string;
  readonly name: string;
  readonly ok: boolean;
  /** What the model is told: the result (or error) serialized as text. */
  readonly content: string;
}

export interface ReplySettings {
  /** How many segments TTS may run ahead of the one playing (default 1). */
  readonly ttsLookahead: number;
  /** Model ↔ tool rounds before the reply gives up (default 5). */
  readonly maxToolRounds: number;
  readonly segments: SegmentOptions;
}

export const DEFAULT_REPLY_SETTINGS: ReplySettings = {
  ttsLookahead: 1,
  maxToolRounds: 5,
  segments: DEFAULT_SEGMENT_OPTIONS,
};

/** Per-reply model settings (a playbook stage's). */
export interface LlmSettings {
  readonly model?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  readonly toolChoice?: 'auto' | 'required' | 'none' | { readonly name: string };
}

export interface ReplyInput {
  readonly replyId: number;
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly ToolSpec[];
  readonly settings?: ReplySettings;
  /** Start with the output paused (the session's transport is gone); `output.resume` starts it. */
  readonly outputPaused?: boolean;
  /**
   * A speculative (preemptive) reply: the LLM and TTS run, but nothing leaves until `reply.commit` —
   * no delta, no audio, no avatar audio, and tool calls wait (tools never run speculatively).
   * Stopping the actor instead discards it.
   */
  readonly held?: boolean;
  /** Say this text instead of asking the LLM (a playbook stage's greeting). */
  readonly say?: string;
  readonly llm?: LlmSettings;
}

export interface ReplyContext {
  readonly replyId: number;
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolSpec[];
  readonly settings: ReplySettings;
  /** LLM text not yet cut into a segment. */
  readonly pending: string;
  /** Text of each segment, in speaking order. */
  readonly segments: readonly string[];
  /** Segments whose synthesis has finished (the next one to synthesize is at this index). */
  readonly synthesized: number;
  /** Segments played to the end. */
  readonly playedSegments: number;
  /** Words of segment `playedSegments` played to the end. */
  readonly playedWords: number;
  readonly audioStarted: boolean;
  readonly toolCalls: readonly ToolCall[];
  readonly rounds: number;
  readonly usage: LlmUsage;
  readonly error: ErrorInfo | undefined;
  readonly outputPaused: boolean;
  readonly say: string | undefined;
  readonly llm: LlmSettings | undefined;
  /**
   * Speculative and not yet committed (see ReplyInput.held): the deltas and the avatar audio that
   * will be sent at the commit. Undefined once committed (or never held). One field, not three:
   * a context of more than 19 keys turns into a slow dictionary-mode object in XState's assign.
   */
  readonly held: { readonly deltas: readonly string[]; readonly motion: readonly { pcm: Int16Array; sampleRate: number; end: boolean }[] } | undefined;
}

export type LlmActorEvent =
  | { type: 'llm.text'; text: string }
  | { type: 'llm.toolCall'; call: ToolCall }
  | { type: 'llm.usage'; usage: LlmUsage }
  | { type: 'llm.done' }
  | { type: 'llm.error'; error: ErrorInfo };

export type TtsActorEvent =
  /** The segment's text was changed before it was spoken (a guard rewrote or vetoed it: ''). */
  | { type: 'tts.rewrite'; segment: number; text: string }
  | { type: 'tts.done'; segment: number }
  | { type: 'tts.error'; segment: number; error: ErrorInfo };

export type PlayoutReport =
  | { type: 'playout.started'; sampleRate: number }
  | { type: 'playout.word'; segment: number; words: number }
  | { type: 'playout.segmentDone'; segment: number }
  | { type: 'playout.drained' };

/** Commands the reply sends to its playout child. */
export type PlayoutCommand =
  | { type: 'playout.enqueue'; segment: number; pcm: Int16Array; sampleRate: number; words?: readonly WordTiming[] }
  | { type: 'playout.segmentEnd'; segment: number; text: string }
  | { type: 'playout.finish' }
  | { type: 'playout.pause' }
  | { type: 'playout.resume' };

export type ReplyEvent =
  | LlmActorEvent
  | TtsActorEvent
  | PlayoutReport
  | { type: 'output.pause' }
  | { type: 'output.resume' }
  /** One call of the running tool round ended (the tools actor tells it as it happens). */
  | { type: 'tools.callEnded'; replyId: number; result: ToolResult }
  /** A held (speculative) reply becomes the reply: what it held goes out. */
  | { type: 'reply.commit' }
  /** Avatar audio from this reply's TTS while it is held. */
  | { type: 'motion.audio'; pcm: Int16Array; sampleRate: number; end: boolean };

/** Events a reply sends to its parent session. */
export type ReplyParentEvent =
  | { type: 'reply.delta'; replyId: number; text: string }
  | { type: 'reply.audioStart'; replyId: number; sampleRate: number }
  /** The text whose audio has been played so far grew (whole words). */
  | { type: 'reply.heard'; replyId: number; text: string }
  | { type: 'reply.toolCalls'; replyId: number; calls: readonly ToolCall[] }
  | { type: 'reply.toolResults'; replyId: number; results: readonly ToolResult[] }
  | { type: 'tools.callEnded'; replyId: number; result: ToolResult }
  | { type: 'reply.done'; replyId: number; text: string; usage: LlmUsage }
  | { type: 'reply.failed'; replyId: number; error: ErrorInfo; playedText: string };

export interface LlmActorInput {
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolSpec[];
  /** The stage's model settings and tool choice (machines/playbook.ts StageView). */
  readonly llm?: LlmSettings;
  /** Fixed text to stream instead of calling the LLM (a greeting). */
  readonly say?: string;
}

export interface TtsActorInput {
  readonly segment: number;
  readonly text: string;
  /** Where the segment's audio goes: `playout.enqueue` commands, in order, before `tts.done`. */
  readonly playout: AnyActorRef | undefined;
  /** The session's avatar link, if any: `motion.audio` as it is synthesized. */
  readonly motion: AnyActorRef | undefined;
}

export interface PlayoutActorInput {
  readonly replyId: number;
  /** Start paused: no frame goes out before `playout.resume`. */
  readonly paused: boolean;
}

/** Everything the reply said (segments vetoed by a guard are empty and left out). */
export function spokenText(context: Pick<ReplyContext, 'segments'>): string {
  return context.segments.filter((text) => text.length > 0).join(' ');
}


/** The text whose audio has been played so far: whole segments, then whole words. */
export function playedText(context: Pick<ReplyContext, 'segments' | 'playedSegments' | 'playedWords'>): string {
  const parts = context.segments.slice(0, context.playedSegments).filter((text) => text.length > 0);
  const current = context.segments[context.playedSegments];
  if (current !== undefined && context.playedWords > 0) {
    parts.push(words(current).slice(0, context.playedWords).join(' '));
  }
  return parts.join(' ');
}

function missing(name: string): never {
  throw new Error(`The reply machine's '${name}' actor was not provided (use replyMachine.provide({ actors }))`);
}

const NO_USAGE: LlmUsage = { inputTokens: 0, outputTokens: 0 };

export const replyMachine = setup({
  types: {
    context: {} as ReplyContext,
    events: {} as ReplyEvent,
    input: {} as ReplyInput,
    emitted: {} as ReplyParentEvent,
  },
  actors: {
    llm: fromCallback<LlmActorEvent, LlmActorInput>(() => missing('llm')),
    tools: fromPromise<ToolResult[], { calls: readonly ToolCall[]; allowed?: readonly string[]; replyId?: number }>(async () => missing('tools')),
    tts: fromCallback<TtsActorEvent, TtsActorInput>(() => missing('tts')),
    playout: fromCallback<PlayoutCommand, PlayoutActorInput>(() => missing('playout')),
  },
  actions: {
    appendText: assign(({ context }, params: { text: string }) => {
      const cut = cutSegments(context.pending + params.text, false, context.settings.segments);
      return cut.segments.length === 0
        ? { pending: cut.rest }
        : { pending: cut.rest, segments: [...context.segments, ...cut.segments] };
    }),
    flushText: assign(({ context }) => {
      const cut = cutSegments(context.pending, true, context.settings.segments);
      return { pending: '', segments: [...context.segments, ...cut.segments] };
    }),
    reportDelta: enqueueActions(({ context, enqueue }, params: { text: string }) => {
      if (context.held) enqueue.assign({ held: { ...context.held, deltas: [...context.held.deltas, params.text] } });
      else enqueue.sendParent({ type: 'reply.delta', replyId: context.replyId, text: params.text });
    }),
    /** The commit: the held deltas and avatar audio go out, the playout starts (unless the transport is gone). */
    commit: enqueueActions(({ context, enqueue, system }) => {
      const held = context.held ?? { deltas: [], motion: [] };
      if (held.deltas.length > 0) enqueue.sendParent({ type: 'reply.delta', replyId: context.replyId, text: held.deltas.join('') });
      const motion = system.get('motion') as AnyActorRef | undefined;
      if (motion !== undefined) for (const audio of held.motion) enqueue.sendTo(motion, { type: 'motion.audio', ...audio });
      enqueue.assign({ held: undefined });
      if (!context.outputPaused) enqueue.sendTo('playout', { type: 'playout.resume' } satisfies PlayoutCommand);
    }),
    collectToolCall: assign({
      toolCalls: ({ context }, params: { call: ToolCall }) => [...context.toolCalls, params.call],
    }),
    addUsage: assign({
      usage: ({ context }, params: { usage: LlmUsage }) => ({
        inputTokens: context.usage.inputTokens + params.usage.inputTokens,
        outputTokens: context.usage.outputTokens + params.usage.outputTokens,
      }),
    }),
    reportToolCalls: sendParent(({ context }) => ({
      type: 'reply.toolCalls',
      replyId: context.replyId,
      calls: context.toolCalls,
    })),
    recordToolResults: assign(({ context }, params: { results: readonly ToolResult[] }) => ({
      messages: [
        ...context.messages,
        { role: 'assistant', content: context.segments.join(' '), toolCalls: context.toolCalls } satisfies ChatMessage,
        ...params.results.map(
          (r): ChatMessage => ({ role: 'tool', toolCallId: r.callId, name: r.name, content: r.content }),
        ),
      ],
      toolCalls: [],
      rounds: context.rounds + 1,
    })),
    reportToolResults: sendParent(({ context }, params: { results: readonly ToolResult[] }) => ({
      type: 'reply.toolResults',
      replyId: context.replyId,
      results: params.results,
    })),
    endSegment: sendTo('playout', ({ context }, params: { segment: number }): PlayoutCommand => ({
      type: 'playout.segmentEnd',
      segment: params.segment,
      text: context.segments[params.segment] ?? '',
    })),
    /** The avatar (if the session has one) animates the speech as soon as it is synthesized. */
    forwardToMotion: enqueueActions(({ context, system, enqueue }, params: { pcm: Int16Array; sampleRate: number; end: boolean }) => {
      if (context.held) {
        enqueue.assign({ held: { ...context.held, motion: [...context.held.motion, params] } });
        return;
      }
      const motion = system.get('motion') as AnyActorRef | undefined;
      if (motion !== undefined) enqueue.sendTo(motion, { type: 'motion.audio', pcm: params.pcm, sampleRate: params.sampleRate, end: params.end });
    }),
    countSynthesized: assign({ synthesized: ({ context }) => context.synthesized + 1 }),
    rewriteSegment: assign({
      segments: ({ context }, params: { segment: number; text: string }) =>
        context.segments.map((text, i) => (i === params.segment ? params.text : text)),
    }),
    finishPlayout: sendTo('playout', { type: 'playout.finish' } satisfies PlayoutCommand),
    pausePlayout: enqueueActions(({ enqueue }) => {
      enqueue.assign({ outputPaused: true });
      enqueue.sendTo('playout', { type: 'playout.pause' } satisfies PlayoutCommand);
    }),
    resumePlayout: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ outputPaused: false });
      if (context.held === undefined) enqueue.sendTo('playout', { type: 'playout.resume' } satisfies PlayoutCommand);
    }),
    markAudioStarted: assign({ audioStarted: true }),
    reportAudioStart: sendParent(({ context }, params: { sampleRate: number }) => ({
      type: 'reply.audioStart',
      replyId: context.replyId,
      sampleRate: params.sampleRate,
    })),
    markWords: assign(({ context }, params: { segment: number; words: number }) =>
      params.segment === context.playedSegments ? { playedWords: params.words } : {},
    ),
    markSegmentPlayed: assign(({ context }, params: { segment: number }) =>
      params.segment === context.playedSegments ? { playedSegments: context.playedSegments + 1, playedWords: 0 } : {},
    ),
    setError: assign({ error: (_, params: { error: ErrorInfo }) => params.error }),
    reportHeard: sendParent(({ context }) => ({ type: 'reply.heard', replyId: context.replyId, text: playedText(context) })),
    reportDone: sendParent(({ context }) => ({
      type: 'reply.done',
      replyId: context.replyId,
      text: spokenText(context),
      usage: context.usage,
    })),
    reportFailed: sendParent(({ context }) => ({
      type: 'reply.failed',
      replyId: context.replyId,
      error: context.error ?? { code: 'internal', message: 'reply failed' },
      playedText: playedText(context),
    })),
    // Emitted copies let a reply run standalone (tests, tools) and be observed with actor.on().
    emitDone: emit(({ context }) => ({
      type: 'reply.done' as const,
      replyId: context.replyId,
      text: spokenText(context),
      usage: context.usage,
    })),
  },
  guards: {
    hasToolCalls: ({ context }) => context.toolCalls.length > 0,
    tooManyRounds: ({ context }) => context.rounds >= context.settings.maxToolRounds,
    canSynthesize: ({ context }) =>
      context.synthesized < context.segments.length &&
      context.synthesized - context.playedSegments <= context.settings.ttsLookahead,
    llmFinished: stateIn('#reply.active.llm.done'),
    held: ({ context }) => context.held !== undefined,
    allSynthesized: ({ context }) => context.synthesized >= context.segments.length,
  },
}).createMachine({
  id: 'reply',
  context: ({ input }) => ({
    replyId: input.replyId,
    messages: input.messages,
    tools: input.tools ?? [],
    settings: input.settings ?? DEFAULT_REPLY_SETTINGS,
    pending: '',
    segments: [],
    synthesized: 0,
    playedSegments: 0,
    playedWords: 0,
    audioStarted: false,
    toolCalls: [],
    rounds: 0,
    usage: NO_USAGE,
    error: undefined,
    outputPaused: input.outputPaused ?? false,
    held: input.held === true ? { deltas: [], motion: [] } : undefined,
    say: input.say,
    llm: input.llm,
  }),
  initial: 'active',
  states: {
    active: {
      type: 'parallel',
      invoke: { id: 'playout', src: 'playout', input: ({ context }) => ({ replyId: context.replyId, paused: context.outputPaused || context.held !== undefined }) },
      on: {
        'reply.commit': { guard: 'held', actions: 'commit' },
        'tools.callEnded': { actions: sendParent(({ event }) => event) },
        // From this reply's TTS (it was started held): held until the commit, then forwarded.
        'motion.audio': { actions: { type: 'forwardToMotion', params: ({ event }) => ({ pcm: event.pcm, sampleRate: event.sampleRate, end: event.end }) } },
        'output.pause': { actions: 'pausePlayout' },
        'output.resume': { actions: 'resumePlayout' },
        'playout.started': {
          actions: ['markAudioStarted', { type: 'reportAudioStart', params: ({ event }) => ({ sampleRate: event.sampleRate }) }],
        },
        'playout.word': { actions: [{ type: 'markWords', params: ({ event }) => event }, 'reportHeard'] },
        // The playout reports every word of a segment before its end, so the heard text is already told.
        'playout.segmentDone': { actions: { type: 'markSegmentPlayed', params: ({ event }) => event } },
      },
      onDone: 'finished',
      states: {
        llm: {
          initial: 'streaming',
          states: {
            streaming: {
              invoke: {
                src: 'llm',
                // Only the first round can be a fixed text (it has no tool calls).
                input: ({ context }) =>
                  context.say !== undefined && context.rounds === 0
                    ? { messages: context.messages, tools: [], say: context.say }
                    : { messages: context.messages, tools: context.tools, ...(context.llm === undefined ? {} : { llm: context.llm }) },
              },
              on: {
                'llm.text': {
                  actions: [
                    { type: 'appendText', params: ({ event }) => ({ text: event.text }) },
                    { type: 'reportDelta', params: ({ event }) => ({ text: event.text }) },
                  ],
                },
                'llm.toolCall': { actions: { type: 'collectToolCall', params: ({ event }) => ({ call: event.call }) } },
                'llm.usage': { actions: { type: 'addUsage', params: ({ event }) => ({ usage: event.usage }) } },
                'llm.done': [
                  {
                    guard: and(['hasToolCalls', 'tooManyRounds']),
                    target: '#reply.failed',
                    actions: {
                      type: 'setError',
                      params: ({ context }) => ({
                        error: { code: 'tool_failed', message: `gave up after ${context.settings.maxToolRounds} tool rounds` },
                      }),
                    },
                  },
                  { guard: and(['hasToolCalls', 'held']), target: 'awaitingCommit' },
                  { guard: 'hasToolCalls', target: 'tooling' },
                  { target: 'done', actions: 'flushText' },
                ],
                'llm.error': {
                  target: '#reply.failed',
                  actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
                },
              },
            },
            // A speculative reply wants tools: they run only once it is committed.
            awaitingCommit: {
              // The commit (the `active` state's transition) clears `held`.
              always: { guard: not('held'), target: 'tooling' },
            },
            tooling: {
              entry: ['flushText', 'reportToolCalls'],
              invoke: {
                src: 'tools',
                // Only the tools this reply offered may run (a playbook stage's, not another stage's).
                input: ({ context }) => ({ calls: context.toolCalls, allowed: context.tools.map((tool) => tool.name), replyId: context.replyId }),
                onDone: [
                  {
                    target: 'streaming',
                    actions: [
                      { type: 'reportToolResults', params: ({ event }) => ({ results: event.output }) },
                      { type: 'recordToolResults', params: ({ event }) => ({ results: event.output }) },
                    ],
                  },
                ],
                onError: {
                  target: '#reply.failed',
                  actions: {
                    type: 'setError',
                    params: ({ event }) => ({
                      error: { code: 'tool_failed', message: event.error instanceof Error ? event.error.message : String(event.error) },
                    }),
                  },
                },
              },
            },
            done: { type: 'final' },
          },
        },
        speech: {
          initial: 'idle',
          states: {
            idle: {
              always: [
                { guard: 'canSynthesize', target: 'synthesizing' },
                { guard: and(['llmFinished', 'allSynthesized']), target: 'draining' },
              ],
            },
            synthesizing: {
              invoke: {
                src: 'tts',
                input: ({ context, self }) => ({
                  segment: context.synthesized,
                  text: context.segments[context.synthesized] ?? '',
                  playout: self.getSnapshot().children['playout'] as AnyActorRef | undefined,
                  // Held: avatar audio comes back here and waits for the commit.
                  motion: context.held !== undefined ? self : (self.system.get('motion') as AnyActorRef | undefined),
                }),
              },
              on: {
                'tts.rewrite': { actions: { type: 'rewriteSegment', params: ({ event }) => ({ segment: event.segment, text: event.text }) } },
                'tts.done': {
                  target: 'idle',
                  actions: [{ type: 'endSegment', params: ({ event }) => ({ segment: event.segment }) }, 'countSynthesized'],
                },
                'tts.error': {
                  target: '#reply.failed',
                  actions: { type: 'setError', params: ({ event }) => ({ error: event.error }) },
                },
              },
            },
            draining: {
              entry: ['finishPlayout', { type: 'forwardToMotion', params: { pcm: new Int16Array(0), sampleRate: 16_000, end: true } }],
              on: { 'playout.drained': 'done' },
            },
            done: { type: 'final' },
          },
        },
      },
    },
    finished: { type: 'final', entry: ['reportDone', 'emitDone'] },
    failed: { type: 'final', entry: 'reportFailed' },
  },
});

export type ReplyMachine = typeof replyMachine;
