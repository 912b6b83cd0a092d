/**
 * `playbookGraph`: a playbook as a Mermaid `stateDiagram-v2`, one arrow per transition labelled
 * with its condition, `'end'` as the final state `[*]`. A `'*'` transition is drawn from a dashed
 * "any other stage" state, or from each stage it applies in (the rule of `transitionsFrom`) when
 * that is not every other stage.
 *
 * Mermaid's state-diagram lexer ends a label at `:` `;` or a line break, treats `#` and `%%` as
 * comments and a whole line containing `direction TB` (LR…) as a direction statement, so labels
 * are written with Mermaid entity codes (`#58;` renders as `:`): the diagram renders as shown in
 * docs/playbooks.md.
 */
import { transitionsFrom } from './define.js';
import type { PlaybookDefinition, StageDefinition, TransitionDefinition } from './types.js';

export interface PlaybookGraphOptions {
  /** Longest `llm:` description shown before it is shortened with `…`. Default 40 characters. */
  readonly maxDescriptionLength?: number;
  /**
   * How `'*'` transitions are drawn. `'node'` (default): from one dashed "any other stage" state
   * when they apply in every stage but their target, from each stage they apply in otherwise (a
   * `maxTurns` or `timeout` one always per stage, to show each stage's limit). `'expand'`: always
   * one arrow per stage.
   */
  readonly wildcards?: 'node' | 'expand';
}

const DEFAULT_MAX_DESCRIPTION = 40;
const INDENT = '    ';
const ANY_STAGE_LABEL = 'any other stage';
/** Words the state-diagram lexer reads as keywords when they stand alone as a state id. */
const MERMAID_KEYWORDS = new Set(['state', 'note', 'class', 'classdef', 'scale', 'direction', 'as', 'end', 'hide', 'left', 'right', 'of', 'over', 'acctitle', 'accdescr', 'statediagram', 'click', 'style']);

/** The playbook's stages and transitions as a Mermaid `stateDiagram-v2` (no trailing newline). */
export function playbookGraph(playbook: PlaybookDefinition, options: PlaybookGraphOptions = {}): string {
  const maxDescription = options.maxDescriptionLength ?? DEFAULT_MAX_DESCRIPTION;
  const stageIds = Object.keys(playbook.stages);
  const ids = mermaidIds(stageIds);
  const node = (stage: string): string => (stage === 'end' ? '[*]' : (ids.get(stage) ?? stage));

  // The stages each transition applies in (the rule of transitionsFrom), by transition index.
  const sources = new Map<number, string[]>();
  for (const stage of stageIds)
    for (const { index } of transitionsFrom(playbook, stage)) sources.set(index, [...(sources.get(index) ?? []), stage]);

  const anyStage = freshId('any_stage', new Set(ids.values()));
  let anyStageUsed = false;
  const arrows: string[] = [];
  const drawn = new Set([playbook.initialStage]);
  playbook.transitions.forEach((transition, index) => {
    const from = sources.get(index) ?? [];
    const everyOther = from.length > 0 && from.length === stageIds.filter((id) => id !== transition.to).length;
    const perStage = transition.condition.type === 'maxTurns' || transition.condition.type === 'timeout';
    if (transition.from === '*' && options.wildcards !== 'expand' && everyOther && !perStage) {
      anyStageUsed = true;
      arrows.push(`${INDENT}${anyStage} --> ${node(transition.to)}: ${escapeText(conditionLabel(transition, undefined, maxDescription))}`);
      drawn.add(transition.to);
    } else {
      for (const stage of from) {
        arrows.push(`${INDENT}${node(stage)} --> ${node(transition.to)}: ${escapeText(conditionLabel(transition, playbook.stages[stage] as StageDefinition | undefined, maxDescription))}`);
        drawn.add(stage).add(transition.to);
      }
    }
  });

  const lines = ['stateDiagram-v2'];
  for (const stage of stageIds) if (ids.get(stage) !== stage) lines.push(`${INDENT}state "${escapeText(stage)}" as ${ids.get(stage)}`);
  if (anyStageUsed) lines.push(`${INDENT}state "${ANY_STAGE_LABEL}" as ${anyStage}`);
  lines.push(`${INDENT}[*] --> ${node(playbook.initialStage)}`, ...arrows);
  // A stage no arrow touches still appears (escaped ones are declared above).
  for (const stage of stageIds) if (!drawn.has(stage) && ids.get(stage) === stage) lines.push(`${INDENT}${stage}`);
  if (anyStageUsed) lines.push(`${INDENT}classDef wildcard stroke-dasharray: 4 4`, `${INDENT}class ${anyStage} wildcard`);
  return lines.join('\n');
}

/** The condition in words: `toolCall: confirm_booking`, `timeout: 30 s`, with a non-zero priority. */
export function conditionLabel(transition: TransitionDefinition, stage: StageDefinition | undefined, maxDescriptionLength = DEFAULT_MAX_DESCRIPTION): string {
  const condition = transition.condition;
  let label: string;
  switch (condition.type) {
    case 'toolCall':
      label = `toolCall: ${condition.tool}${condition.when ? ' (when …)' : ''}`;
      break;
    case 'keyword':
      label = `keyword${condition.source === 'assistant' ? ' (assistant)' : ''}: ${condition.keywords.join(', ')}`;
      break;
    case 'intent':
      label = `intent: ${condition.intent}`;
      break;
    case 'llmDecision':
      label = `llm: ${shorten(condition.description, maxDescriptionLength)}`;
      break;
    case 'maxTurns':
      label = `maxTurns: ${stage?.maxTurns ?? '?'}`;
      break;
    case 'timeout':
      label = `timeout: ${stage?.timeoutMs === undefined ? '?' : duration(stage.timeoutMs)}`;
      break;
    case 'custom':
      label = `custom: ${condition.label}`;
      break;
  }
  const priority = transition.priority ?? 0;
  return priority === 0 ? label : `${label} (priority ${priority})`;
}

function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  return `${Number((ms / 1000).toFixed(1))} s`;
}

function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, '')}…`;
}

/** Stage ids usable as they are, and generated ones (`stage_1`…) for the others. */
function mermaidIds(stageIds: readonly string[]): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set(stageIds.filter(isMermaidId));
  for (const stage of stageIds) {
    const id = isMermaidId(stage) ? stage : freshId('stage', taken);
    taken.add(id);
    ids.set(stage, id);
  }
  return ids;
}

/** `base` if free, else `base_1`, `base_2`… (stage ids generated for escaping use `stage_1`…). */
function freshId(base: string, taken: ReadonlySet<string>): string {
  if (base !== 'stage' && !taken.has(base)) return base;
  let n = 1;
  while (taken.has(`${base}_${n}`)) n++;
  return `${base}_${n}`;
}

function isMermaidId(id: string): boolean {
  const lower = id.toLowerCase();
  // The lexer's first rule takes a leading "default" as a keyword, whatever follows it.
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(id) && !MERMAID_KEYWORDS.has(lower) && !lower.startsWith('default');
}

const ENTITIES: Readonly<Record<string, string>> = {
  '#': '#35;',
  ':': '#58;',
  ';': '#59;',
  '"': '#quot;',
  '%': '#37;',
  '&': '#amp;',
  '<': '#lt;',
  '>': '#gt;',
  '{': '#123;',
  '}': '#125;',
};

/** Text safe inside a transition label or a `state "…"` description. */
export function escapeText(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[#:;"%&<>{}]/g, (char) => ENTITIES[char] ?? char)
    .replace(/(direction)\s+(?=tb|bt|rl|lr)/gi, '$1#32;');
}
