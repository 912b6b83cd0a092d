/**
 * Statechart export: an XState machine's node tree as JSON (nodes and edges) and as Mermaid
 * `stateDiagram-v2`. It reads the machine itself (`machine.root`, each node's `states`, `type`,
 * `transitions`, `always`, `invoke`), so what it draws is what runs, including a machine given
 * implementations with `provide()`.
 *
 * Edges are the transitions that have a target. Targetless ones (actions only, the state does not
 * change) are left out. An edge keeps XState's event type: `''` for an eventless (`always`)
 * transition, `xstate.after.<delay>.<state id>` for a delayed one (its `delay` is set), and
 * `xstate.done.actor.<id>` / `xstate.error.actor.<id>` for an invoked actor's outcome. The
 * inspector stream reports the same event types, so an event in its log names the edge it took.
 */
import { and, type AnyStateMachine, not, or, stateIn } from 'xstate';
import { escapeText } from '../playbook/graph.js';

export type StatechartNodeType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';

export interface StatechartNode {
  /** XState's node id: the machine id and the path, dot-separated (`session.active.turn.listening`), or the node's own `id`. */
  readonly id: string;
  /** The state's name in its parent (`listening`). */
  readonly key: string;
  /** The parent's id; null for the machine's root. */
  readonly parent: string | null;
  readonly type: StatechartNodeType;
  /** A compound state's initial child (its id). */
  readonly initial?: string;
  /** A history state's depth. */
  readonly history?: 'shallow' | 'deep';
  /** The actors the state invokes (their `src` names); they run while the state is active. */
  readonly invoke?: readonly string[];
  readonly description?: string;
}

export interface StatechartEdge {
  readonly source: string;
  readonly target: string;
  /** XState's event type (see the module comment): '' for `always`, `xstate.after.…` for a delay. */
  readonly event: string;
  /** The guard in words: a name, `a && !b`, `in(#session.active.turn.replying)`, `inline` for an anonymous function. */
  readonly guard?: string;
  /** A delayed transition's delay: the name of a delay of the machine's `setup`, or milliseconds. */
  readonly delay?: string | number;
  /** The transition exits and re-enters its target even when it is the source or inside it. */
  readonly reenter?: true;
}

export interface Statechart {
  /** The machine id. */
  readonly id: string;
  /** Every state node, parents before children, in definition order. */
  readonly nodes: readonly StatechartNode[];
  readonly edges: readonly StatechartEdge[];
}

/** The parts of XState's StateNode this module reads. */
interface NodeLike {
  readonly id: string;
  readonly key: string;
  readonly type: StatechartNodeType;
  readonly states: Readonly<Record<string, NodeLike>>;
  readonly history: false | 'shallow' | 'deep';
  readonly description?: string;
  readonly initial?: { readonly target: readonly NodeLike[] };
  readonly transitions: ReadonlyMap<string, readonly TransitionLike[]>;
  readonly always?: readonly TransitionLike[];
  readonly invoke: readonly { readonly id: string; readonly src: unknown }[];
}

interface TransitionLike {
  readonly target: readonly NodeLike[] | undefined;
  readonly eventType: string;
  readonly reenter: boolean;
  readonly guard?: unknown;
  readonly delay?: unknown;
}

// XState's guard combinators are functions carrying the function that checks them; comparing those
// tells them apart without relying on function names.
const AND_CHECK = (and([]) as unknown as { check: unknown }).check;
const OR_CHECK = (or([]) as unknown as { check: unknown }).check;
const NOT_CHECK = (not('x') as unknown as { check: unknown }).check;
const STATE_IN_CHECK = (stateIn('x') as unknown as { check: unknown }).check;

/** A guard in words. */
export function guardLabel(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const combined = guard as { check?: unknown; guards?: readonly unknown[]; stateValue?: unknown };
    const parts = (combined.guards ?? []).map((g) => {
      const label = guardLabel(g);
      return /\s/.test(label) ? `(${label})` : label;
    });
    if (combined.check === AND_CHECK) return parts.join(' && ');
    if (combined.check === OR_CHECK) return parts.join(' || ');
    if (combined.check === NOT_CHECK) return `!${parts[0] ?? ''}`;
    if (combined.check === STATE_IN_CHECK) return `in(${typeof combined.stateValue === 'string' ? combined.stateValue : JSON.stringify(combined.stateValue)})`;
    return 'inline';
  }
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  return 'inline';
}

function delayOf(delay: unknown): string | number {
  if (typeof delay === 'number' || typeof delay === 'string') return delay;
  return 'inline';
}

function srcName(src: unknown): string {
  if (typeof src === 'string') return src;
  const id = (src as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : 'inline';
}

/** The machine's states and transitions as nodes and edges. */
export function statechartOf(machine: AnyStateMachine): Statechart {
  const nodes: StatechartNode[] = [];
  const edges: StatechartEdge[] = [];
  const visit = (node: NodeLike, parent: NodeLike | undefined): void => {
    const initial = node.type === 'compound' ? node.initial?.target[0]?.id : undefined;
    const invoke = node.invoke.map((definition) => srcName(definition.src));
    nodes.push({
      id: node.id,
      key: node.key,
      parent: parent?.id ?? null,
      type: node.type,
      ...(initial === undefined ? {} : { initial }),
      ...(node.type === 'history' && node.history !== false ? { history: node.history } : {}),
      ...(invoke.length === 0 ? {} : { invoke }),
      ...(node.description === undefined ? {} : { description: node.description }),
    });
    const transitions = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const transition of transitions) {
      for (const target of transition.target ?? []) {
        edges.push({
          source: node.id,
          target: target.id,
          event: transition.eventType,
          ...(transition.guard === undefined ? {} : { guard: guardLabel(transition.guard) }),
          ...(transition.delay === undefined ? {} : { delay: delayOf(transition.delay) }),
          ...(transition.reenter ? { reenter: true as const } : {}),
        });
      }
    }
    for (const child of Object.values(node.states)) visit(child, node);
  };
  const root = machine.root as unknown as NodeLike;
  visit(root, undefined);
  return { id: root.id, nodes, edges };
}

// ---------------------------------------------------------------------------------------- Mermaid

const INDENT = '    ';
/** Words Mermaid's state-diagram lexer reads as keywords when a line starts with them. */
const MERMAID_KEYWORDS = new Set(['state', 'note', 'class', 'classdef', 'scale', 'direction', 'as', 'end', 'hide', 'left', 'right', 'of', 'over', 'acctitle', 'accdescr', 'statediagram', 'click', 'style']);

/**
 * Mermaid ids for the nodes: the XState id with every character outside `[A-Za-z0-9_]` made `_`
 * (the lexer ends an id at `:`, `-`, `{` or a space), prefixed when it would read as a keyword or
 * start with a digit or `default`, and numbered when two collide.
 */
function mermaidIds(nodes: readonly StatechartNode[]): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set<string>();
  for (const node of nodes) {
    let base = node.id.replace(/[^A-Za-z0-9_]/g, '_');
    const lower = base.toLowerCase();
    if (/^[0-9]/.test(base) || MERMAID_KEYWORDS.has(lower) || lower.startsWith('default') || base.length === 0) base = `s_${base}`;
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}_${n}`;
    taken.add(id);
    ids.set(node.id, id);
  }
  return ids;
}

/** How an edge reads on its arrow: `event [guard]`, `after delay`, `done: actor`, `done` (a state's onDone), `always [guard]`. */
export function edgeLabel(edge: StatechartEdge, chart: Statechart): string {
  let event: string;
  if (edge.delay !== undefined) event = `after ${typeof edge.delay === 'number' ? `${edge.delay} ms` : edge.delay}`;
  else if (edge.event === '') event = 'always';
  // A state's own onDone: all its regions (or its child) reached a final state.
  else if (edge.event.startsWith('xstate.done.state.')) event = 'done';
  else if (edge.event.startsWith('xstate.done.actor.') || edge.event.startsWith('xstate.error.actor.')) {
    const done = edge.event.startsWith('xstate.done.actor.');
    const id = edge.event.slice(done ? 'xstate.done.actor.'.length : 'xstate.error.actor.'.length);
    // An unnamed invoke has a generated id (`0.session.active…`): its src names it better.
    const source = chart.nodes.find((node) => node.id === edge.source);
    const src = /^\d+\./.test(id) && source?.invoke?.length === 1 ? source.invoke[0] : id;
    event = `${done ? 'done' : 'error'}: ${src ?? id}`;
  } else event = edge.event;
  return `${event}${edge.guard === undefined ? '' : ` [${edge.guard}]`}${edge.reenter ? ' (reenter)' : ''}`;
}

/**
 * A statechart as Mermaid `stateDiagram-v2`: compound states as composite states, the regions of a
 * parallel state separated by `--`, `[*] -->` to each initial state, final states `--> [*]`, and
 * one arrow per edge labelled with its event, guard and delay. No trailing newline.
 *
 * Every state is declared inside its parent's block first; the arrows come after, at the top level.
 * Mermaid places a state where it first appears, so an arrow between states of different composite
 * states does not move either of them. Labels are escaped with Mermaid entity codes (see
 * `escapeText` in src/playbook/graph.ts).
 */
export function statechartMermaid(chart: Statechart): string {
  const ids = mermaidIds(chart.nodes);
  const id = (nodeId: string): string => ids.get(nodeId) ?? nodeId;
  const children = new Map<string | null, StatechartNode[]>();
  for (const node of chart.nodes) children.set(node.parent, [...(children.get(node.parent) ?? []), node]);
  const lines = ['stateDiagram-v2'];

  const declare = (node: StatechartNode, depth: number): void => {
    const pad = INDENT.repeat(depth);
    const name = escapeText(node.key);
    const kids = children.get(node.id) ?? [];
    if (kids.length === 0) {
      lines.push(`${pad}state "${name}" as ${id(node.id)}`);
      return;
    }
    lines.push(`${pad}state "${name}" as ${id(node.id)} {`);
    kids.forEach((kid, index) => {
      if (node.type === 'parallel' && index > 0) lines.push(`${pad}${INDENT}--`);
      declare(kid, depth + 1);
    });
    if (node.initial !== undefined) lines.push(`${pad}${INDENT}[*] --> ${id(node.initial)}`);
    for (const kid of kids) if (kid.type === 'final') lines.push(`${pad}${INDENT}${id(kid.id)} --> [*]`);
    lines.push(`${pad}}`);
  };
  const root = chart.nodes.find((node) => node.parent === null);
  if (root === undefined) return lines.join('\n');
  declare(root, 1);
  lines.push(`${INDENT}[*] --> ${id(root.id)}`);

  const drawn = new Set<string>();
  for (const edge of chart.edges) {
    const line = `${INDENT}${id(edge.source)} --> ${id(edge.target)}: ${escapeText(edgeLabel(edge, chart))}`;
    // The same arrow twice (two guarded branches alike) is drawn once.
    if (drawn.has(line)) continue;
    drawn.add(line);
    lines.push(line);
  }
  return lines.join('\n');
}

/** `statechartMermaid(statechartOf(machine))`. */
export function machineMermaid(machine: AnyStateMachine): string {
  return statechartMermaid(statechartOf(machine));
}
