/**
 * The vocabulary of playbooks: a multi-stage conversation (greet → identify → collect → confirm →
 * done) as data. `definePlaybook` (./define.ts) checks it; machines/playbook.ts runs it as a child
 * of the session; `voxstate playbook graph` draws it.
 */
import type { ChatMessage, Tool } from '../providers/types.js';

/** The LLM settings of a stage (the provider's defaults where absent). */
export interface StageLlmSettings {
  readonly model?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
}

export type ToolChoice = 'auto' | 'required' | 'none' | { readonly name: string };

/** What the history does on entering a stage. */
export type ContextStrategy = 'append' | 'reset' | 'summarize';

/** What stage hooks and conditions see. */
export interface StageContext<StageId extends string = string, Data = unknown> {
  readonly stage: StageId;
  /** The stage's data: its definition's `data` (a structured clone) until `setData` replaced it. */
  readonly data: Data;
  /** User turns completed in this stage. */
  readonly turns: number;
  /** ms since the stage was entered. */
  readonly elapsedMs: number;
  readonly history: readonly ChatMessage[];
  /** The last user text and the last reply of the stage (empty before any). */
  readonly lastUserText: string;
  readonly lastAssistantText: string;
}

/** What a stage's `onEnter` and `onExit` see: the stage context, and a way to replace its data. */
export interface StageHookContext<StageId extends string = string, Data = unknown> extends StageContext<StageId, Data> {
  /**
   * Replaces the stage's data (a structured clone of `data` is kept). It is part of the session
   * record from then on: a resume restores it. Tools of the stage have the same (`ToolContext.stage`).
   */
  setData(data: Data): void;
}

export interface StageDefinition<StageId extends string = string, Data = unknown> {
  /** Joined after the playbook's globalSystemPrompt for every LLM call of the stage. */
  readonly systemPrompt: string;
  /** This stage's tools, beside the playbook's globalTools. */
  readonly tools?: readonly Tool[];
  readonly toolChoice?: ToolChoice;
  readonly llm?: StageLlmSettings;
  /** User turns after which a `maxTurns` transition may fire. */
  readonly maxTurns?: number;
  /** Time in the stage after which a `timeout` transition may fire. */
  readonly timeoutMs?: number;
  /** Spoken on entry (before any user turn of the stage). */
  readonly greeting?: string;
  readonly contextStrategy?: ContextStrategy;
  /**
   * The stage's initial data: anything structured-cloneable the app keeps with the stage. Its type
   * is inferred per stage and types the stage's hooks. Hooks and tools replace it with `setData`;
   * it is persisted with the session and restored on resume.
   */
  readonly data?: Data;
  // Hooks and condition callbacks are declared as methods (not function-typed properties) so that a
  // Playbook<'greet' | 'done'> stays assignable to Playbook (the runtime's view of any playbook).
  onEnter?(context: StageHookContext<StageId, Data>): void | Promise<void>;
  onExit?(context: StageHookContext<StageId, Data>): void | Promise<void>;
}

/** When a transition fires. */
export type TransitionCondition<StageId extends string = string> =
  /** A call of `tool` completed (its result committed); `when` may look at the arguments and result. */
  | { readonly type: 'toolCall'; readonly tool: string; readonly when?: (call: { readonly arguments: unknown; readonly result: unknown; readonly ok: boolean }) => boolean }
  /** A user (or assistant) turn contains one of the keywords (whole words, case-insensitive). */
  | { readonly type: 'keyword'; readonly keywords: readonly string[]; readonly source?: 'user' | 'assistant' }
  /** The app's classifier says the user turn has this intent. */
  | { readonly type: 'intent'; readonly intent: string; classify(text: string, context: StageContext<StageId>): string | undefined | Promise<string | undefined> }
  /** The LLM calls the built-in transition tool with this target; `description` tells it when to. */
  | { readonly type: 'llmDecision'; readonly description: string }
  /** The stage's maxTurns user turns were completed. */
  | { readonly type: 'maxTurns' }
  /** The stage's timeoutMs passed. */
  | { readonly type: 'timeout' }
  /** The app decides after each turn; `label` names it in graphs and `stage.change` reasons. */
  | { readonly type: 'custom'; readonly label: string; check(context: StageContext<StageId>): boolean | Promise<boolean> };

export interface TransitionDefinition<StageId extends string = string> {
  /**
   * A stage, or '*' for every stage other than `to` in which the condition can fire (`maxTurns`
   * only where the stage has maxTurns, `timeout` where it has timeoutMs, `toolCall` where the tool
   * is available). `transitionsFrom` (./define.ts) applies this rule.
   */
  readonly from: StageId | '*';
  /** A stage, or 'end' to complete the playbook. */
  readonly to: StageId | 'end';
  readonly condition: TransitionCondition<StageId>;
  /** Higher first when several fire at once; ties in definition order. Default 0. */
  readonly priority?: number;
}

/** The stage ids of a playbook whose stages map each id to its data type. */
export type StageIdOf<Stages> = keyof Stages & string;

/**
 * A playbook as data. `Stages` maps each stage id to the type of its `data` (both inferred by
 * `definePlaybook` from the `stages` object): stage ids are a literal union, and each stage's hooks
 * see its own data type.
 */
export interface PlaybookDefinition<Stages = Record<string, unknown>> {
  readonly id: string;
  readonly initialStage: NoInfer<StageIdOf<Stages>>;
  readonly globalSystemPrompt?: string;
  readonly globalTools?: readonly Tool[];
  /**
   * What users say in this conversation, for recognizers with a closed vocabulary: the offline
   * pocketsphinx recognizer adds these (and the keyword transitions' keywords) to its language model.
   */
  readonly phrases?: readonly string[];
  /** 'end' and '*' are reserved (a type error here, a validation error at run time). */
  readonly stages: { readonly [K in keyof Stages]: K extends 'end' | '*' ? never : StageDefinition<K & string, Stages[K]> };
  readonly transitions: readonly TransitionDefinition<NoInfer<StageIdOf<Stages>>>[];
}

/** A checked playbook (definePlaybook's result). */
export interface Playbook<Stages = Record<string, unknown>> extends PlaybookDefinition<Stages> {
  readonly stageIds: readonly StageIdOf<Stages>[];
}

/** Why a stage changed, as `stage.change.reason` says it. */
export type StageChangeReason =
  | { readonly kind: 'start' }
  | { readonly kind: 'toolCall'; readonly tool: string }
  | { readonly kind: 'keyword'; readonly keyword: string }
  | { readonly kind: 'intent'; readonly intent: string }
  | { readonly kind: 'llmDecision' }
  | { readonly kind: 'maxTurns'; readonly turns: number }
  | { readonly kind: 'timeout'; readonly afterMs: number }
  | { readonly kind: 'custom'; readonly label: string }
  | { readonly kind: 'resume' };
