/**
 * `definePlaybook` and `validatePlaybook`: a playbook definition checked once, before any session
 * runs it. TypeScript catches unknown stages at compile time (see types.ts); the same checks and
 * the ones types cannot express (a `maxTurns` transition from a stage without `maxTurns`, a tool
 * the stage does not have, a stage nothing leads to) run here, for JavaScript users and for
 * definitions built at run time.
 */
import { ConfigError } from '../errors.js';
import type { Tool } from '../providers/types.js';
import type { Playbook, PlaybookDefinition, StageDefinition, StageIdOf, TransitionCondition, TransitionDefinition } from './types.js';

export type PlaybookIssueCode =
  /** The definition (or its `stages` / `transitions`) is not the right kind of value. */
  | 'invalid_definition'
  | 'invalid_id'
  | 'no_stages'
  /** A stage named 'end' or '*' (or ''): those names are taken by transitions. */
  | 'reserved_stage_id'
  | 'unknown_initial_stage'
  /** A transition's `from` or `to` names no stage. */
  | 'unknown_stage'
  | 'empty_system_prompt'
  /** A field of the wrong type (tools not an array, a hook that is not a function…). */
  | 'invalid_type'
  /** A field with a value outside its set (toolChoice, contextStrategy, llm settings, a blank greeting, data that cannot be cloned). */
  | 'invalid_value'
  /** maxTurns not a positive integer, timeoutMs not a positive number. */
  | 'invalid_limit'
  /** A tool without a name, description, parameters object or execute function. */
  | 'invalid_tool'
  /** Two tools with one name in a stage (its own and the global ones together) or in globalTools. */
  | 'duplicate_tool'
  /** A `toolCall` transition or a `toolChoice` naming a tool the stage does not have. */
  | 'unknown_tool'
  | 'tool_choice_without_tools'
  | 'max_turns_without_limit'
  | 'timeout_without_limit'
  /** A keyword transition with no keywords, or a blank one. */
  | 'empty_keywords'
  /** An `llmDecision` transition without the description that tells the LLM when to take it. */
  | 'missing_description'
  /** An unknown condition type, or one missing what it needs (intent name, classify, label, check…). */
  | 'invalid_condition'
  | 'invalid_priority'
  /** Warning: no transition path leads from initialStage to the stage. */
  | 'unreachable_stage'
  /** Warning: the playbook (or a reachable stage) can never reach 'end'. */
  | 'no_path_to_end';

export interface PlaybookIssue {
  readonly code: PlaybookIssueCode;
  /** Errors make `definePlaybook` throw; warnings are for `voxstate playbook validate` and logs. */
  readonly severity: 'error' | 'warning';
  /** The stage concerned ('*' for a transition from any stage); undefined for the playbook as a whole. */
  readonly stage: string | undefined;
  /**
   * The field concerned: inside the stage's definition for stage fields (`maxTurns`, `tools[1]`),
   * from the playbook's root otherwise (`transitions[3].to`, `initialStage`, `globalTools[0]`);
   * undefined when the issue is about the stage as a whole (unreachable).
   */
  readonly field: string | undefined;
  /** The full path from the definition's root: `stages.party.maxTurns`, `transitions[3].to`. */
  readonly path: string;
  readonly message: string;
}

const CONDITION_TYPES = ['toolCall', 'keyword', 'intent', 'llmDecision', 'maxTurns', 'timeout', 'custom'] as const;
const TOOL_CHOICES = ['auto', 'required', 'none'] as const;
const CONTEXT_STRATEGIES = ['append', 'reset', 'summarize'] as const;
const RESERVED_STAGE_IDS = new Set(['end', '*', '']);

type Loose = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Loose {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBlank(value: unknown): boolean {
  return typeof value !== 'string' || value.trim() === '';
}

function quote(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/**
 * Checks a definition (typed or not) and returns every problem found, errors first in definition
 * order, then warnings. An empty array means the playbook is sound.
 */
export function validatePlaybook(definition: unknown): PlaybookIssue[] {
  const issues: PlaybookIssue[] = [];
  const report = (code: PlaybookIssueCode, stage: string | undefined, field: string | undefined, message: string, severity: 'error' | 'warning' = 'error'): void => {
    // Transition fields and playbook fields are named from the root; stage fields inside the stage.
    const path = stage === undefined || field?.startsWith('transitions[') ? (field ?? '') : field === undefined ? `stages.${stage}` : `stages.${stage}.${field}`;
    issues.push({ code, severity, stage, field, path, message });
  };

  if (!isObject(definition)) {
    report('invalid_definition', undefined, '', `a playbook definition must be an object, got ${definition === null ? 'null' : typeof definition}`);
    return issues;
  }
  if (isBlank(definition['id'])) report('invalid_id', undefined, 'id', 'must be a non-empty string');

  const globalTools = checkTools(definition['globalTools'], undefined, 'globalTools', report);
  const phrases = definition['phrases'];
  if (phrases !== undefined && !(Array.isArray(phrases) && phrases.every((p) => typeof p === 'string' && p.trim().length > 0))) {
    report('invalid_value', undefined, 'phrases', 'must be an array of non-empty strings');
  }
  const globalNames = new Set(globalTools.map((tool) => tool.name));

  const stagesValue = definition['stages'];
  const stages = new Map<string, Loose>();
  const stageTools = new Map<string, Set<string>>();
  if (!isObject(stagesValue)) {
    report('invalid_definition', undefined, 'stages', 'must be an object of stage definitions keyed by stage id');
  } else {
    if (Object.keys(stagesValue).length === 0) report('no_stages', undefined, 'stages', 'a playbook needs at least one stage');
    for (const [id, stage] of Object.entries(stagesValue)) {
      if (RESERVED_STAGE_IDS.has(id)) {
        report('reserved_stage_id', id, undefined, `${quote(id)} cannot name a stage: 'end' and '*' are reserved for transitions`);
        continue;
      }
      if (!isObject(stage)) {
        report('invalid_definition', id, undefined, 'a stage definition must be an object');
        continue;
      }
      stages.set(id, stage);
      stageTools.set(id, checkStage(id, stage, globalNames, report));
    }
  }

  const initial = definition['initialStage'];
  if (typeof initial !== 'string' || !stages.has(initial)) {
    const known = [...stages.keys()].map(quote).join(', ');
    report('unknown_initial_stage', undefined, 'initialStage', `${quote(initial)} is not a stage${known ? ` (stages: ${known})` : ''}`);
  }

  const transitionsValue = definition['transitions'];
  const edges: TransitionDefinition[] = [];
  if (!Array.isArray(transitionsValue)) {
    report('invalid_definition', undefined, 'transitions', 'must be an array of transitions');
  } else {
    transitionsValue.forEach((transition: unknown, index) => {
      if (checkTransition(transition, index, stages, stageTools, globalNames, report)) edges.push(transition as TransitionDefinition);
    });
  }

  // Warnings: the shape of the graph, from every transition whose stages are known.
  if (typeof initial === 'string' && stages.has(initial)) checkReachability(initial, stages, stageTools, globalNames, edges, report);
  return [...issues.filter((issue) => issue.severity === 'error'), ...issues.filter((issue) => issue.severity === 'warning')];
}

type Report = (code: PlaybookIssueCode, stage: string | undefined, field: string | undefined, message: string, severity?: 'error' | 'warning') => void;

/** Checks a tools array; returns the well-formed tools (for name lookups). */
function checkTools(value: unknown, stage: string | undefined, field: string, report: Report, taken: ReadonlySet<string> = new Set()): Tool[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    report('invalid_type', stage, field, 'must be an array of tools');
    return [];
  }
  const tools: Tool[] = [];
  const seen = new Set<string>();
  value.forEach((tool: unknown, index) => {
    const at = `${field}[${index}]`;
    if (!isObject(tool) || isBlank(tool['name'])) {
      report('invalid_tool', stage, at, 'a tool needs a non-empty name');
      return;
    }
    const name = tool['name'] as string;
    const missing = [
      typeof tool['description'] === 'string' ? undefined : 'a description',
      isObject(tool['parameters']) ? undefined : 'a parameters object (JSON Schema)',
      typeof tool['execute'] === 'function' ? undefined : 'an execute function',
    ].filter((part) => part !== undefined);
    if (missing.length > 0) report('invalid_tool', stage, at, `tool '${name}' needs ${missing.join(', ')}`);
    if (seen.has(name)) report('duplicate_tool', stage, at, `two tools are named '${name}'`);
    else if (taken.has(name)) report('duplicate_tool', stage, at, `tool '${name}' has the name of a global tool`);
    seen.add(name);
    if (missing.length === 0) tools.push(tool as unknown as Tool);
  });
  return tools;
}

/** Checks one stage; returns the names of the tools it can call (its own and the global ones). */
function checkStage(id: string, stage: Loose, globalNames: ReadonlySet<string>, report: Report): Set<string> {
  if (isBlank(stage['systemPrompt'])) report('empty_system_prompt', id, 'systemPrompt', 'every stage needs a system prompt (what the LLM is to do in it)');
  const own = checkTools(stage['tools'], id, 'tools', report, globalNames);
  const names = new Set([...globalNames, ...own.map((tool) => tool.name)]);

  const choice = stage['toolChoice'];
  if (choice !== undefined) {
    if (isObject(choice)) {
      if (isBlank(choice['name'])) report('invalid_value', id, 'toolChoice.name', 'must name a tool');
      else if (!names.has(choice['name'] as string)) report('unknown_tool', id, 'toolChoice.name', `the stage has no tool '${String(choice['name'])}'`);
    } else if (!TOOL_CHOICES.includes(choice as (typeof TOOL_CHOICES)[number])) {
      report('invalid_value', id, 'toolChoice', `must be 'auto', 'required', 'none' or { name }, got ${quote(choice)}`);
    } else if (choice === 'required' && names.size === 0) {
      report('tool_choice_without_tools', id, 'toolChoice', "'required' but the stage has no tools");
    }
  }

  const maxTurns = stage['maxTurns'];
  if (maxTurns !== undefined && !(typeof maxTurns === 'number' && Number.isInteger(maxTurns) && maxTurns > 0))
    report('invalid_limit', id, 'maxTurns', `must be a positive integer, got ${quote(maxTurns)}`);
  const timeoutMs = stage['timeoutMs'];
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0))
    report('invalid_limit', id, 'timeoutMs', `must be a positive number of milliseconds, got ${quote(timeoutMs)}`);

  const greeting = stage['greeting'];
  if (greeting !== undefined && typeof greeting !== 'string') report('invalid_type', id, 'greeting', 'must be a string');
  else if (greeting !== undefined && isBlank(greeting)) report('invalid_value', id, 'greeting', 'is blank; leave it out to say nothing on entry');
  // Stage data is cloned on entry and kept in the session record.
  if (stage['data'] !== undefined) {
    try {
      structuredClone(stage['data']);
    } catch (error) {
      report('invalid_value', id, 'data', `cannot be kept with the session (it must be structured-cloneable): ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  const strategy = stage['contextStrategy'];
  if (strategy !== undefined && !CONTEXT_STRATEGIES.includes(strategy as (typeof CONTEXT_STRATEGIES)[number]))
    report('invalid_value', id, 'contextStrategy', `must be 'append', 'reset' or 'summarize', got ${quote(strategy)}`);

  const llm = stage['llm'];
  if (llm !== undefined) {
    if (!isObject(llm)) report('invalid_type', id, 'llm', 'must be an object { model, temperature, maxTokens }');
    else {
      if (llm['model'] !== undefined && isBlank(llm['model'])) report('invalid_value', id, 'llm.model', 'must be a non-empty string');
      const temperature = llm['temperature'];
      if (temperature !== undefined && !(typeof temperature === 'number' && Number.isFinite(temperature) && temperature >= 0))
        report('invalid_value', id, 'llm.temperature', `must be a number >= 0, got ${quote(temperature)}`);
      const maxTokens = llm['maxTokens'];
      if (maxTokens !== undefined && !(typeof maxTokens === 'number' && Number.isInteger(maxTokens) && maxTokens > 0))
        report('invalid_value', id, 'llm.maxTokens', `must be a positive integer, got ${quote(maxTokens)}`);
    }
  }

  for (const hook of ['onEnter', 'onExit'] as const)
    if (stage[hook] !== undefined && typeof stage[hook] !== 'function') report('invalid_type', id, hook, 'must be a function');
  return names;
}

/**
 * Checks one transition; true when its stages and condition type are known, so that it counts as
 * an edge for the reachability warnings (a broken condition still says where the author meant to go).
 */
function checkTransition(
  transition: unknown,
  index: number,
  stages: ReadonlyMap<string, Loose>,
  stageTools: ReadonlyMap<string, ReadonlySet<string>>,
  globalNames: ReadonlySet<string>,
  report: Report,
): boolean {
  const at = `transitions[${index}]`;
  if (!isObject(transition)) {
    report('invalid_definition', undefined, at, 'a transition must be an object { from, to, condition }');
    return false;
  }
  const { from, to, condition, priority } = transition;
  const fromKnown = from === '*' || (typeof from === 'string' && stages.has(from));
  const toKnown = to === 'end' || (typeof to === 'string' && stages.has(to));
  const stage = fromKnown ? (from as string) : undefined;
  const known = [...stages.keys()].map(quote).join(', ');
  if (!fromKnown) report('unknown_stage', undefined, `${at}.from`, `${quote(from)} is not a stage or '*' (stages: ${known})`);
  if (!toKnown) report('unknown_stage', stage, `${at}.to`, `${quote(to)} is not a stage or 'end' (stages: ${known})`);
  if (priority !== undefined && !(typeof priority === 'number' && Number.isFinite(priority)))
    report('invalid_priority', stage, `${at}.priority`, `must be a finite number, got ${quote(priority)}`);

  if (!isObject(condition)) {
    report('invalid_condition', stage, `${at}.condition`, `must be an object { type: ${CONDITION_TYPES.map(quote).join(' | ')}, … }`);
    return false;
  }
  const type = condition['type'];
  const c = `${at}.condition`;
  // Where the condition is evaluated: the stage itself, or for '*' every other stage.
  const sources = !fromKnown ? [] : from === '*' ? [...stages.keys()].filter((id) => id !== to) : [from as string];
  switch (type) {
    case 'toolCall': {
      const tool = condition['tool'];
      if (isBlank(tool)) report('invalid_condition', stage, `${c}.tool`, 'must name the tool whose call fires the transition');
      else if (fromKnown && !sources.some((id) => stageTools.get(id)?.has(tool as string)) && !globalNames.has(tool as string))
        report('unknown_tool', stage, `${c}.tool`, from === '*' ? `no stage has a tool '${String(tool)}'` : `stage '${String(from)}' has no tool '${String(tool)}' (its tools or globalTools)`);
      if (condition['when'] !== undefined && typeof condition['when'] !== 'function') report('invalid_condition', stage, `${c}.when`, 'must be a function');
      break;
    }
    case 'keyword': {
      const keywords = condition['keywords'];
      if (!Array.isArray(keywords) || keywords.length === 0) report('empty_keywords', stage, `${c}.keywords`, 'needs at least one keyword');
      else
        keywords.forEach((keyword: unknown, i) => {
          if (isBlank(keyword)) report('empty_keywords', stage, `${c}.keywords[${i}]`, 'a keyword must be a non-empty string');
        });
      const source = condition['source'];
      if (source !== undefined && source !== 'user' && source !== 'assistant') report('invalid_condition', stage, `${c}.source`, `must be 'user' or 'assistant', got ${quote(source)}`);
      break;
    }
    case 'intent':
      if (isBlank(condition['intent'])) report('invalid_condition', stage, `${c}.intent`, 'must name the intent');
      if (typeof condition['classify'] !== 'function') report('invalid_condition', stage, `${c}.classify`, 'must be a function (text, context) => intent | undefined');
      break;
    case 'llmDecision':
      if (isBlank(condition['description'])) report('missing_description', stage, `${c}.description`, 'tells the LLM when to take this transition; it cannot be empty');
      break;
    case 'maxTurns':
      if (fromKnown && !sources.some((id) => stages.get(id)?.['maxTurns'] !== undefined))
        report('max_turns_without_limit', stage, `${c}.type`, from === '*' ? 'no stage sets maxTurns' : `stage '${String(from)}' does not set maxTurns`);
      break;
    case 'timeout':
      if (fromKnown && !sources.some((id) => stages.get(id)?.['timeoutMs'] !== undefined))
        report('timeout_without_limit', stage, `${c}.type`, from === '*' ? 'no stage sets timeoutMs' : `stage '${String(from)}' does not set timeoutMs`);
      break;
    case 'custom':
      if (isBlank(condition['label'])) report('invalid_condition', stage, `${c}.label`, 'names the condition in graphs and stage.change reasons; it cannot be empty');
      if (typeof condition['check'] !== 'function') report('invalid_condition', stage, `${c}.check`, 'must be a function (context) => boolean');
      break;
    default:
      report('invalid_condition', stage, `${c}.type`, `must be one of ${CONDITION_TYPES.map(quote).join(', ')}, got ${quote(type)}`);
  }
  return fromKnown && toKnown && CONDITION_TYPES.includes(type as (typeof CONDITION_TYPES)[number]);
}

function checkReachability(
  initial: string,
  stages: ReadonlyMap<string, Loose>,
  stageTools: ReadonlyMap<string, ReadonlySet<string>>,
  globalNames: ReadonlySet<string>,
  transitions: readonly TransitionDefinition[],
  report: Report,
): void {
  const edges = new Map<string, Set<string>>([...stages.keys()].map((id) => [id, new Set<string>()]));
  for (const transition of transitions)
    for (const from of sourcesOf(transition, stages, stageTools, globalNames)) edges.get(from)?.add(transition.to);

  const reachable = closure([initial], (id) => edges.get(id) ?? []);
  for (const id of stages.keys())
    if (!reachable.has(id)) report('unreachable_stage', id, undefined, `no transition path leads to it from '${initial}'`, 'warning');

  if (!transitions.some((transition) => transition.to === 'end')) {
    report('no_path_to_end', undefined, 'transitions', "no transition goes to 'end': the playbook never completes", 'warning');
    return;
  }
  // Stages from which 'end' can be reached: walk the edges backwards from it.
  const reverse = new Map<string, string[]>();
  for (const [from, targets] of edges) for (const to of targets) reverse.set(to, [...(reverse.get(to) ?? []), from]);
  const ending = closure(['end'], (id) => reverse.get(id) ?? []);
  for (const id of stages.keys())
    if (reachable.has(id) && !ending.has(id)) report('no_path_to_end', id, undefined, "no transition path leads from it to 'end'", 'warning');
}

function closure(start: readonly string[], next: (id: string) => Iterable<string>): Set<string> {
  const seen = new Set(start);
  const queue = [...start];
  for (let id = queue.shift(); id !== undefined; id = queue.shift())
    for (const to of next(id))
      if (!seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
  return seen;
}

/** The stages a (sound) transition applies in: its `from`, or for '*' every other stage where the condition can fire. */
function sourcesOf(
  transition: TransitionDefinition,
  stages: ReadonlyMap<string, Loose>,
  stageTools: ReadonlyMap<string, ReadonlySet<string>>,
  globalNames: ReadonlySet<string>,
): string[] {
  if (transition.from !== '*') return [transition.from];
  return [...stages.keys()].filter((id) => id !== transition.to && canFire(transition.condition, stages.get(id), stageTools.get(id) ?? globalNames));
}

function canFire(condition: TransitionCondition, stage: Loose | undefined, tools: ReadonlySet<string>): boolean {
  switch (condition.type) {
    case 'maxTurns':
      return stage?.['maxTurns'] !== undefined;
    case 'timeout':
      return stage?.['timeoutMs'] !== undefined;
    case 'toolCall':
      return tools.has(condition.tool);
    default:
      return true;
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Checks a definition and returns it as a frozen `Playbook` with its `stageIds`. Stage ids are the
 * literal union of the `stages` keys: an `initialStage`, `from` or `to` naming another stage does
 * not compile. Throws a `ConfigError` listing every error (warnings do not throw); its `cause` is
 * the full `PlaybookIssue[]` (read it with `playbookIssuesOf`).
 *
 * The playbook, its stages, transitions and conditions are frozen copies; tools, `data` and
 * functions are the values you passed.
 */
export function definePlaybook<Stages>(definition: PlaybookDefinition<Stages>): Playbook<Stages> {
  const issues = validatePlaybook(definition);
  const errors = issues.filter((issue) => issue.severity === 'error');
  if (errors.length > 0) {
    const id = isObject(definition) && typeof definition['id'] === 'string' ? `'${definition['id']}'` : 'the definition';
    const list = errors.map((issue) => `  ${formatPlaybookIssue(issue)}`).join('\n');
    throw new ConfigError('playbook', `${id} has ${errors.length} error${errors.length === 1 ? '' : 's'}:\n${list}`, { cause: issues });
  }
  const playbook = freezePlaybook(definition as unknown as PlaybookDefinition);
  madeHere.add(playbook);
  return playbook as unknown as Playbook<Stages>;
}

/** Playbooks this copy of the library made: a module importing another copy of voxstate is told apart. */
const madeHere = new WeakSet<object>();

/**
 * Whether `value` came from this copy's `definePlaybook`. A playbook module that imports another
 * copy of voxstate (a second install, or the sources beside a build) makes playbooks this copy did
 * not: they still run, but tools, errors and types then come from two libraries.
 */
export function isPlaybookOfThisLibrary(value: unknown): boolean {
  return typeof value === 'object' && value !== null && madeHere.has(value);
}

/** The issues behind a ConfigError thrown by `definePlaybook` (or `loadPlaybookModule`), if it is one. */
export function playbookIssuesOf(error: unknown): readonly PlaybookIssue[] | undefined {
  if (!(error instanceof Error) || !Array.isArray(error.cause)) return undefined;
  const issues = error.cause as unknown[];
  return issues.every((issue) => isObject(issue) && typeof issue['code'] === 'string' && typeof issue['message'] === 'string')
    ? (issues as PlaybookIssue[])
    : undefined;
}

/** `error party.transitions[3].to: 'confrim' is not a stage…` — the line `voxstate playbook validate` prints. */
export function formatPlaybookIssue(issue: PlaybookIssue): string {
  const where = [issue.stage, issue.field].filter((part) => part !== undefined && part !== '').join('.');
  return `${issue.severity} ${where || 'playbook'}: ${issue.message}`;
}

function freezePlaybook(definition: PlaybookDefinition): Playbook {
  const stageIds = Object.freeze(Object.keys(definition.stages));
  const stages = Object.fromEntries(
    stageIds.map((id) => {
      const stage = definition.stages[id] as StageDefinition;
      return [
        id,
        Object.freeze({
          ...stage,
          ...(stage.tools === undefined ? {} : { tools: Object.freeze([...stage.tools]) }),
          ...(stage.llm === undefined ? {} : { llm: Object.freeze({ ...stage.llm }) }),
          ...(typeof stage.toolChoice === 'object' ? { toolChoice: Object.freeze({ ...stage.toolChoice }) } : {}),
        }),
      ];
    }),
  );
  const transitions = definition.transitions.map((transition) =>
    Object.freeze({
      ...transition,
      condition: Object.freeze(
        transition.condition.type === 'keyword'
          ? { ...transition.condition, keywords: Object.freeze([...transition.condition.keywords]) }
          : { ...transition.condition },
      ),
    }),
  );
  return Object.freeze({
    ...definition,
    ...(definition.globalTools === undefined ? {} : { globalTools: Object.freeze([...definition.globalTools]) }),
    stages: Object.freeze(stages),
    transitions: Object.freeze(transitions),
    stageIds,
  }) as unknown as Playbook;
}

// ---------------------------------------------------------------------------------------------

/** A transition as it applies in one stage: `'*'` resolved, with its index in `transitions`. */
export interface StageTransition<StageId extends string = string> {
  readonly index: number;
  readonly transition: TransitionDefinition<StageId>;
}

/**
 * The transitions that can fire in `stage`, highest priority first, ties in definition order. A
 * `'*'` transition applies in every stage other than its `to` where its condition can fire (a
 * `maxTurns` one only where the stage sets maxTurns, `timeout` where it sets timeoutMs, `toolCall`
 * where the tool is available). `playbookGraph` draws exactly these.
 */
export function transitionsFrom<Stages>(playbook: PlaybookDefinition<Stages>, stage: NoInfer<StageIdOf<Stages>>): StageTransition<StageIdOf<Stages>>[] {
  const definition = playbook.stages[stage] as StageDefinition | undefined;
  const tools = new Set([...(playbook.globalTools ?? []), ...(definition?.tools ?? [])].map((tool) => tool.name));
  return playbook.transitions
    .map((transition, index) => ({ index, transition }))
    .filter(({ transition }) =>
      transition.from === '*' ? transition.to !== stage && canFire(transition.condition, definition as Loose | undefined, tools) : transition.from === stage,
    )
    .sort((a, b) => (b.transition.priority ?? 0) - (a.transition.priority ?? 0) || a.index - b.index);
}
