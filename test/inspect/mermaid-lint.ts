/**
 * A structural check of Mermaid `stateDiagram-v2` text, after the rules of Mermaid's lexer and
 * grammar (packages/mermaid/src/diagrams/state/parser/stateDiagram.jison): what makes a diagram
 * fail to parse, or parse into something other than what was meant. No renderer (no network).
 *
 * - a state id is one lexer ID token: no `:`, `-`, `{` or whitespace; and it must not read as a
 *   keyword (`state`, `note`, `class`, …, and the lexer's first rule takes a leading `default`);
 * - a label (`: …` after an arrow) ends at `:`, `;` or a line break; `#` and `%%` start comments
 *   elsewhere, and a line containing `direction` + whitespace + TB/BT/RL/LR is a direction statement:
 *   so labels may hold these only as entity codes (`#58;`), which Mermaid swaps for placeholders
 *   before it parses (encodeEntities in mermaidAPI) and decodes when it draws;
 * - `state "…"` descriptions end at `"`;
 * - composite blocks balance; `--` (concurrency) only inside a block, between two states;
 * - every arrow's states are declared (a state is placed where it first appears, so before the arrow);
 * - `[*] --> x` inside a block names a state of that block.
 */

const ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
const KEYWORDS = new Set(['state', 'note', 'class', 'classdef', 'scale', 'direction', 'as', 'end', 'hide', 'left', 'right', 'of', 'over', 'acctitle', 'accdescr', 'statediagram', 'click', 'style']);

export interface LintResult {
  readonly problems: readonly string[];
  /** Declared state ids, with the id of the block each was declared in ('' at the top). */
  readonly states: ReadonlyMap<string, string>;
  readonly arrows: readonly { readonly from: string; readonly to: string; readonly label: string | undefined; readonly block: string }[];
}

function badId(id: string): string | undefined {
  if (!ID.test(id)) return `id ${JSON.stringify(id)} is not one lexer ID token`;
  const lower = id.toLowerCase();
  if (KEYWORDS.has(lower)) return `id ${JSON.stringify(id)} reads as a keyword`;
  if (lower.startsWith('default')) return `id ${JSON.stringify(id)} starts with "default" (a keyword to the lexer)`;
  return undefined;
}

/** What Mermaid does to the text before its lexer sees it (mermaidAPI's encodeEntities): `#58;` becomes an opaque placeholder. */
function encodeEntities(text: string): string {
  return text.replace(/#\w+;/g, 'ENTITY');
}

function badText(text: string, where: string): string | undefined {
  const encoded = encodeEntities(text);
  if (/[:;\n"{}<>]/.test(encoded)) return `${where} ${JSON.stringify(text)} holds a character that ends or breaks it`;
  if (encoded.includes('%%')) return `${where} ${JSON.stringify(text)} holds a comment marker`;
  if (encoded.includes('#')) return `${where} ${JSON.stringify(text)} holds a bare '#' (a comment)`;
  return undefined;
}

export function lintStateDiagram(text: string): LintResult {
  const problems: string[] = [];
  const states = new Map<string, string>();
  const arrows: { from: string; to: string; label: string | undefined; block: string }[] = [];
  const lines = text.split('\n');
  if (lines[0] !== 'stateDiagram-v2') problems.push(`first line is ${JSON.stringify(lines[0])}, not stateDiagram-v2`);
  const stack: { id: string; items: number; lastWasDivider: boolean }[] = [];
  const block = (): string => stack.at(-1)?.id ?? '';
  const declare = (id: string, line: number): void => {
    const problem = badId(id);
    if (problem !== undefined) problems.push(`line ${line}: ${problem}`);
    if (states.has(id)) problems.push(`line ${line}: state ${id} declared twice`);
    states.set(id, block());
    const top = stack.at(-1);
    if (top !== undefined) {
      top.items++;
      top.lastWasDivider = false;
    }
  };
  lines.slice(1).forEach((raw, index) => {
    const n = index + 2;
    const line = raw.trim();
    if (line === '') return;
    if (/direction\s+(?:tb|bt|rl|lr)/i.test(encodeEntities(line))) problems.push(`line ${n}: reads as a direction statement`);
    let match: RegExpExecArray | null;
    if ((match = /^state "([^"]*)" as (\S+) \{$/.exec(line)) !== null) {
      const problem = badText(match[1] ?? '', 'description');
      if (problem !== undefined) problems.push(`line ${n}: ${problem}`);
      declare(match[2] ?? '', n);
      stack.push({ id: match[2] ?? '', items: 0, lastWasDivider: false });
    } else if ((match = /^state "([^"]*)" as (\S+)$/.exec(line)) !== null) {
      const problem = badText(match[1] ?? '', 'description');
      if (problem !== undefined) problems.push(`line ${n}: ${problem}`);
      declare(match[2] ?? '', n);
    } else if (line === '}') {
      const top = stack.pop();
      if (top === undefined) problems.push(`line ${n}: } without a block`);
      else if (top.lastWasDivider) problems.push(`line ${n}: block ${top.id} ends with --`);
    } else if (line === '--') {
      const top = stack.at(-1);
      if (top === undefined) problems.push(`line ${n}: -- outside a composite state`);
      else if (top.items === 0 || top.lastWasDivider) problems.push(`line ${n}: -- with no state before it in ${top.id}`);
      else top.lastWasDivider = true;
    } else if ((match = /^(\[\*\]|\S+) --> (\[\*\]|\S+?)(?:: (.*))?$/.exec(line)) !== null) {
      const [, from = '', to = '', label] = match;
      for (const end of [from, to]) {
        if (end === '[*]') continue;
        if (!states.has(end)) problems.push(`line ${n}: ${end} is used before it is declared`);
      }
      if (from === '[*]' && to === '[*]') problems.push(`line ${n}: [*] --> [*]`);
      if (from === '[*]' && stack.length > 0 && states.get(to) !== block()) problems.push(`line ${n}: the initial state ${to} is not a state of block ${block()}`);
      if (label !== undefined) {
        const problem = badText(label, 'label');
        if (problem !== undefined) problems.push(`line ${n}: ${problem}`);
        if (label.trim() === '') problems.push(`line ${n}: empty label`);
      }
      arrows.push({ from, to, label, block: block() });
    } else problems.push(`line ${n}: not a statement this check knows: ${JSON.stringify(line)}`);
  });
  if (stack.length > 0) problems.push(`unclosed blocks: ${stack.map((s) => s.id).join(', ')}`);
  return { problems, states, arrows };
}
