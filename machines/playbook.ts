/**
 * A playbook as a statechart: the compiler from a definition (src/playbook/types.ts) to the machine
 * that runs as the session's `playbook` child. The session tells it what happened in the
 * conversation; it decides the stage and tells the session (`playbook.stage`), which takes the
 * stage's prompt and tools for every reply from then on.
 *
 *   session → playbook   playbook.userTurn    a user turn was committed to the history
 *                        playbook.replyDone   a reply ended (what was heard of it)
 *                        playbook.toolResults a round of tool calls was committed (results in the history)
 *                        playbook.setData     a hook or tool of a stage replaced the stage's data
 *   playbook → session   playbook.stage       the stage changed (from, to, reason), or the playbook completed
 *                        playbook.data        a stage's data changed (with every stage's data, for the record)
 *
 * Transitions are checked after each of those events, highest priority first (ties in definition
 * order), and after the stage's `timeoutMs`. A transition requested by a tool round takes effect
 * once its results are committed — never half a stage. The stage's hooks run outside the machine
 * (src/session), non-blocking.
 */
import { and, assign, enqueueActions, fromPromise, sendParent, setup } from 'xstate';
import type { ChatMessage, ToolSpec } from '../src/providers/types.js';
import type { ToolResult } from './reply.js';
import type { Playbook, StageChangeReason, StageContext, ToolChoice, TransitionDefinition } from '../src/playbook/types.js';

/** The built-in tool an `llmDecision` transition gives the LLM: it names the stage to move to. */
export const STAGE_TOOL_NAME = 'change_stage';

export interface ToolOutcome {
  readonly name: string;
  readonly arguments: unknown;
  readonly result: unknown;
  readonly ok: boolean;
}

export type PlaybookEvent =
  | { type: 'playbook.userTurn'; text: string; history: readonly ChatMessage[] }
  | { type: 'playbook.replyDone'; text: string; history: readonly ChatMessage[] }
  | { type: 'playbook.toolResults'; results: readonly ToolOutcome[]; history: readonly ChatMessage[] }
  /** Replaces a stage's data (already a clone of what the app passed: see `cloneStageData`). */
  | { type: 'playbook.setData'; stage: string; data: unknown };

/** The events the playbook checks its transitions after. */
export type PlaybookTrigger = Exclude<PlaybookEvent, { type: 'playbook.setData' }>;

/** Each entered stage's data, by stage id: the session record keeps it, a resume restores it. */
export type StageDataMap = Readonly<Record<string, unknown>>;

/**
 * A structured clone of stage data, so the app keeps no reference into the session's state.
 * Throws a TypeError naming the stage for data that cannot be cloned (a function, a socket…).
 */
export function cloneStageData(stage: string, data: unknown): unknown {
  try {
    return structuredClone(data);
  } catch (error) {
    throw new TypeError(`the data of stage '${stage}' cannot be kept with the session: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** The data map with `stage`'s entry filled from its definition when the stage has none yet. */
function withStageData(playbook: Playbook, data: StageDataMap, stage: string | null): StageDataMap {
  if (stage === null || Object.hasOwn(data, stage)) return data;
  const initial = playbook.stages[stage]?.data;
  return initial === undefined ? data : { ...data, [stage]: cloneStageData(stage, initial) };
}

/** A round of tool results with the arguments of their calls (from the history), as the playbook checks them. */
export function toolOutcomes(history: readonly ChatMessage[], results: readonly ToolResult[]): ToolOutcome[] {
  const calls = new Map<string, string>();
  for (const m of history) if (m.role === 'assistant') for (const c of m.toolCalls ?? []) calls.set(c.id, c.arguments);
  const parse = (text: string | undefined): unknown => {
    try {
      return text === undefined || text.trim() === '' ? {} : (JSON.parse(text) as unknown);
    } catch {
      return text;
    }
  };
  return results.map((r) => ({ name: r.name, arguments: parse(calls.get(r.callId)), result: parse(r.content), ok: r.ok }));
}

/** What the session needs of a stage to run its replies. */
export interface StageView {
  readonly id: string;
  /** The playbook's global prompt, then the stage's. */
  readonly systemPrompt: string;
  /** The tools the LLM sees in this stage (global, the stage's, and the stage tool when it has llmDecision transitions). */
  readonly tools: readonly ToolSpec[];
  readonly greeting: string | undefined;
  readonly data: unknown;
  /** The stage's model settings and tool choice. */
  readonly llm: { readonly model?: string; readonly temperature?: number; readonly maxTokens?: number; readonly toolChoice?: ToolChoice } | undefined;
  /**
   * `reset`: the stage's replies see the conversation from the turn that led to the stage on;
   * `summarize`: the same, after a summary of what came before (made by the LLM at the stage's entry).
   */
  readonly contextStrategy: 'append' | 'reset' | 'summarize';
}

export type PlaybookParentEvent =
  | {
      type: 'playbook.stage';
      from: string | null;
      /** The new stage, or null when the playbook completed (a transition to 'end'). */
      to: string | null;
      reason: StageChangeReason;
      stage: StageView | undefined;
      /** Every entered stage's data (the new one's filled from its definition). */
      data: StageDataMap;
    }
  | { type: 'playbook.data'; stage: string; data: StageDataMap };

export interface PlaybookInput {
  /** Resume in this stage (a restored session) instead of the initial one. */
  readonly stage?: string;
  /** Each entered stage's data (a restored session's). */
  readonly data?: StageDataMap;
}

interface PlaybookContext {
  readonly stage: string | null;
  readonly enteredAt: number;
  readonly turns: number;
  readonly lastUserText: string;
  readonly lastAssistantText: string;
  readonly history: readonly ChatMessage[];
  readonly data: StageDataMap;
  /** The event being checked for transitions. */
  readonly trigger: PlaybookTrigger | undefined;
  /** Events that came while one was being checked: checked next, in order. */
  readonly queue: readonly PlaybookTrigger[];
  /** Started in a restored session's stage (even the initial one): its start is a resume, not a new start. */
  readonly restored: boolean;
}

type Chosen = { readonly to: string; readonly reason: StageChangeReason } | undefined;

const words = (text: string): string[] => text.toLowerCase().split(/[^\p{L}\p{N}']+/u).filter((w) => w.length > 0);

function containsPhrase(text: string, phrase: string): boolean {
  const haystack = words(text);
  const needle = words(phrase);
  if (needle.length === 0) return false;
  for (let i = 0; i + needle.length <= haystack.length; i++) if (needle.every((w, j) => haystack[i + j] === w)) return true;
  return false;
}

/** The stage's tool specs as the LLM sees them. */
export function stageTools(playbook: Playbook, stage: string): ToolSpec[] {
  const definition = playbook.stages[stage];
  const spec = ({ name, description, parameters }: ToolSpec): ToolSpec => ({ name, description, parameters });
  const tools = [...(playbook.globalTools ?? []), ...(definition?.tools ?? [])].map(spec);
  const decisions = playbook.transitions.filter((t) => (t.from === stage || t.from === '*') && t.condition.type === 'llmDecision' && t.to !== stage);
  if (decisions.length > 0) {
    tools.push({
      name: STAGE_TOOL_NAME,
      description: `Move the conversation to another stage when one of these applies: ${decisions
        .map((t) => `${t.to}: ${t.condition.type === 'llmDecision' ? t.condition.description : ''}`)
        .join('; ')}`,
      parameters: {
        type: 'object',
        properties: { target: { type: 'string', enum: decisions.map((t) => t.to) } },
        required: ['target'],
        additionalProperties: false,
      },
    });
  }
  return tools;
}

export function stageView(playbook: Playbook, stage: string, data: unknown): StageView {
  const definition = playbook.stages[stage];
  return {
    id: stage,
    systemPrompt: [playbook.globalSystemPrompt ?? '', definition?.systemPrompt ?? ''].filter((p) => p.trim().length > 0).join('\n\n'),
    tools: stageTools(playbook, stage),
    greeting: definition?.greeting,
    data,
    llm:
      definition?.llm === undefined && definition?.toolChoice === undefined
        ? undefined
        : { ...definition?.llm, ...(definition?.toolChoice === undefined ? {} : { toolChoice: definition.toolChoice }) },
    contextStrategy: definition?.contextStrategy ?? 'append',
  };
}

/** The transitions that may leave `stage`, highest priority first (ties in definition order). */
function candidates(playbook: Playbook, stage: string): TransitionDefinition[] {
  return playbook.transitions
    .map((t, index) => ({ t, index }))
    // '*' means every other stage: a wildcard never leads a stage to itself.
    .filter(({ t }) => t.from === stage || (t.from === '*' && t.to !== stage))
    .sort((a, b) => (b.t.priority ?? 0) - (a.t.priority ?? 0) || a.index - b.index)
    .map(({ t }) => t);
}

/** Checks the transitions of `stage` against one event; the first that holds wins. */
export async function chooseTransition(playbook: Playbook, context: StageContext, event: PlaybookTrigger): Promise<Chosen> {
  const definition = playbook.stages[context.stage];
  for (const t of candidates(playbook, context.stage)) {
    const c = t.condition;
    switch (c.type) {
      case 'keyword': {
        const source = c.source ?? 'user';
        const text = event.type === 'playbook.userTurn' && source === 'user' ? event.text : event.type === 'playbook.replyDone' && source === 'assistant' ? event.text : undefined;
        const keyword = text === undefined ? undefined : c.keywords.find((k) => containsPhrase(text, k));
        if (keyword !== undefined) return { to: t.to, reason: { kind: 'keyword', keyword } };
        break;
      }
      case 'intent':
        if (event.type === 'playbook.userTurn' && (await c.classify(event.text, context)) === c.intent) return { to: t.to, reason: { kind: 'intent', intent: c.intent } };
        break;
      case 'maxTurns':
        if (event.type === 'playbook.userTurn' && definition?.maxTurns !== undefined && context.turns >= definition.maxTurns) {
          return { to: t.to, reason: { kind: 'maxTurns', turns: context.turns } };
        }
        break;
      case 'toolCall':
        if (event.type === 'playbook.toolResults') {
          const call = event.results.find((r) => r.name === c.tool && (c.when === undefined ? r.ok : c.when(r)));
          if (call !== undefined) return { to: t.to, reason: { kind: 'toolCall', tool: c.tool } };
        }
        break;
      case 'llmDecision':
        if (event.type === 'playbook.toolResults') {
          const call = event.results.find((r) => r.name === STAGE_TOOL_NAME && r.ok && (r.arguments as { target?: unknown } | null)?.target === t.to);
          if (call !== undefined) return { to: t.to, reason: { kind: 'llmDecision' } };
        }
        break;
      case 'custom':
        if (event.type !== 'playbook.toolResults' && (await c.check(context))) return { to: t.to, reason: { kind: 'custom', label: c.label } };
        break;
      case 'timeout':
        break;
    }
  }
  return undefined;
}

/** The transition a stage's timeout fires, if it has one. */
function timeoutTransition(playbook: Playbook, stage: string): TransitionDefinition | undefined {
  return candidates(playbook, stage).find((t) => t.condition.type === 'timeout');
}

const MAX_DELAY = 2_147_483_647;



export function createPlaybookMachine(playbook: Playbook, options: { readonly now: () => number }) {
  const now = options.now;
  const timedOut = (context: { readonly stage: string | null }, to: string | null): { to: string | null; reason: StageChangeReason } => ({
    to,
    reason: { kind: 'timeout', afterMs: context.stage === null ? 0 : (playbook.stages[context.stage]?.timeoutMs ?? 0) },
  });
  const stageContext = (context: PlaybookContext, extra: Partial<PlaybookContext> = {}): StageContext => {
    const c = { ...context, ...extra };
    return {
      stage: c.stage ?? '',
      data: c.data[c.stage ?? ''],
      turns: c.turns,
      elapsedMs: now() - c.enteredAt,
      history: c.history,
      lastUserText: c.lastUserText,
      lastAssistantText: c.lastAssistantText,
    };
  };
  return setup({
    types: {
      context: {} as PlaybookContext,
      events: {} as PlaybookEvent,
      input: {} as PlaybookInput,
    },
    actors: {
      check: fromPromise<Chosen, { context: StageContext; event: PlaybookTrigger }>(({ input }) => chooseTransition(playbook, input.context, input.event)),
    },
    guards: {
      timeoutEnds: ({ context }) => timeoutTransition(playbook, context.stage ?? '')?.to === 'end',
      hasTimeout: ({ context }) => context.stage !== null && playbook.stages[context.stage]?.timeoutMs !== undefined && timeoutTransition(playbook, context.stage) !== undefined,
      queued: ({ context }) => context.queue.length > 0,
    },
    delays: {
      stageTimeout: ({ context }) => {
        const ms = context.stage === null ? undefined : playbook.stages[context.stage]?.timeoutMs;
        return ms === undefined ? MAX_DELAY : Math.min(MAX_DELAY, Math.max(0, context.enteredAt + ms - now()));
      },
    },
    actions: {
      takeTrigger: assign(({ context, event }) => {
        if (event.type === 'playbook.setData') return {};
        const turns = event.type === 'playbook.userTurn' ? context.turns + 1 : context.turns;
        return {
          trigger: event,
          turns,
          history: event.history,
          ...(event.type === 'playbook.userTurn' ? { lastUserText: event.text } : {}),
          ...(event.type === 'playbook.replyDone' ? { lastAssistantText: event.text } : {}),
        };
      }),
      enqueue: assign({ queue: ({ context, event }) => (event.type === 'playbook.setData' ? context.queue : [...context.queue, event]) }),
      takeQueued: assign(({ context }) => {
        const [next, ...rest] = context.queue;
        if (next === undefined) return {};
        const turns = next.type === 'playbook.userTurn' ? context.turns + 1 : context.turns;
        return {
          queue: rest,
          trigger: next,
          turns,
          history: next.history,
          ...(next.type === 'playbook.userTurn' ? { lastUserText: next.text } : {}),
          ...(next.type === 'playbook.replyDone' ? { lastAssistantText: next.text } : {}),
        };
      }),
      /**
       * The stage changes to `to` (null: the playbook completed): its data is filled from the
       * definition on first entry, the session is told, then the stage is entered.
       */
      tellChange: enqueueActions(({ context, enqueue }, params: { to: string | null; reason: StageChangeReason }) => {
        const data = withStageData(playbook, context.data, params.to);
        if (data !== context.data) enqueue.assign({ data });
        enqueue.sendParent({
          type: 'playbook.stage',
          from: context.stage,
          to: params.to,
          reason: params.reason,
          stage: params.to === null ? undefined : stageView(playbook, params.to, data[params.to]),
          data,
        } satisfies PlaybookParentEvent);
      }),
      setData: enqueueActions(({ context, event, enqueue }) => {
        if (event.type !== 'playbook.setData' || !Object.hasOwn(playbook.stages, event.stage)) return;
        const data = { ...context.data, [event.stage]: event.data };
        enqueue.assign({ data });
        enqueue.sendParent({ type: 'playbook.data', stage: event.stage, data } satisfies PlaybookParentEvent);
      }),
      // Only a user turn's check is waited for (its reply speaks in the stage it leads to).
      tellChecked: enqueueActions(({ context, enqueue }) => {
        if (context.trigger?.type === 'playbook.userTurn') enqueue.sendParent({ type: 'playbook.checked' });
      }),
      enter: assign((_, params: { to: string | null }) => ({ stage: params.to, enteredAt: now(), turns: 0, lastUserText: '', lastAssistantText: '' })),
      tellStart: sendParent(({ context }): PlaybookParentEvent => ({
        type: 'playbook.stage',
        from: null,
        to: context.stage,
        reason: context.restored || context.stage !== playbook.initialStage ? { kind: 'resume' } : { kind: 'start' },
        stage: context.stage === null ? undefined : stageView(playbook, context.stage, context.data[context.stage]),
        data: context.data,
      })),
    },
  }).createMachine({
    id: 'playbook',
    context: ({ input }) => {
      const stage = input.stage !== undefined && Object.hasOwn(playbook.stages, input.stage) ? input.stage : playbook.initialStage;
      return {
        stage,
        enteredAt: now(),
        turns: 0,
        lastUserText: '',
        lastAssistantText: '',
        history: [],
        data: withStageData(playbook, input.data ?? {}, stage),
        trigger: undefined,
        queue: [],
        restored: input.stage !== undefined,
      };
    },
    initial: 'starting',
    // Data is kept for any stage of the playbook, even after it completed (a late tool's write).
    on: { 'playbook.setData': { actions: 'setData' } },
    states: {
      starting: { always: { target: 'running', actions: 'tellStart' } },
      running: {
        initial: 'idle',
        states: {
          idle: {
            always: { guard: 'queued', target: 'checking', actions: 'takeQueued' },
            on: {
              'playbook.userTurn': { target: 'checking', actions: 'takeTrigger' },
              'playbook.replyDone': { target: 'checking', actions: 'takeTrigger' },
              'playbook.toolResults': { target: 'checking', actions: 'takeTrigger' },
            },
            after: {
              stageTimeout: [
                { guard: and(['hasTimeout', 'timeoutEnds']), target: '#playbook.completed', actions: { type: 'tellChange', params: ({ context }) => timedOut(context, null) } },
                {
                  guard: 'hasTimeout',
                  target: 'idle',
                  reenter: true,
                  actions: [
                    { type: 'tellChange', params: ({ context }) => timedOut(context, timeoutTransition(playbook, context.stage ?? '')?.to ?? null) },
                    { type: 'enter', params: ({ context }) => ({ to: timeoutTransition(playbook, context.stage ?? '')?.to ?? null }) },
                  ],
                },
              ],
            },
          },
          checking: {
            // Events that come while one is checked wait their turn.
            on: {
              'playbook.userTurn': { actions: 'enqueue' },
              'playbook.replyDone': { actions: 'enqueue' },
              'playbook.toolResults': { actions: 'enqueue' },
            },
            invoke: {
              src: 'check',
              input: ({ context }) => ({ context: stageContext(context), event: context.trigger as PlaybookTrigger }),
              onDone: [
                {
                  guard: ({ event }) => event.output?.to === 'end',
                  target: '#playbook.completed',
                  actions: [{ type: 'tellChange', params: ({ event }) => ({ to: null, reason: event.output!.reason }) }, 'tellChecked'],
                },
                {
                  guard: ({ event }) => event.output !== undefined,
                  target: 'idle',
                  actions: [
                    { type: 'tellChange', params: ({ event }) => ({ to: event.output!.to, reason: event.output!.reason }) },
                    { type: 'enter', params: ({ event }) => ({ to: event.output!.to }) },
                    'tellChecked',
                  ],
                },
                { target: 'idle', actions: 'tellChecked' },
              ],
              // A condition that throws (an app's classifier) is no transition.
              onError: { target: 'idle', actions: 'tellChecked' },
            },
          },
        },
      },
      // Still answers `checked` so the session never waits on a finished playbook.
      completed: {
        // Turns that were waiting to be checked get their answer: there is nothing left to check.
        entry: enqueueActions(({ context, enqueue }) => {
          for (let i = 0; i < context.queue.filter((e) => e.type === 'playbook.userTurn').length; i++) enqueue.sendParent({ type: 'playbook.checked' });
          enqueue.assign({ queue: [] });
        }),
        on: {
          'playbook.userTurn': { actions: sendParent({ type: 'playbook.checked' }) },
        },
      },
    },
  });
}
