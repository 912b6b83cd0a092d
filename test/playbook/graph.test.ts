import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { definePlaybook } from '../../src/playbook/define.js';
import { escapeText, playbookGraph } from '../../src/playbook/graph.js';
import type { Tool } from '../../src/providers/types.js';
import restaurant from '../../examples/playbook-restaurant/playbook.js';

function tool(name: string): Tool {
  return { name, description: name, parameters: { type: 'object' }, execute: async () => 'ok' };
}

// The diagrams below were rendered with mermaid 11 (stateDiagram-v2) in Chromium while writing
// these tests: every label shows with its ':' and the escaped stage ids with their own names.

describe('playbookGraph', () => {
  it('draws the restaurant example: one arrow per transition, cancel from any other stage, end as [*]', () => {
    expect(playbookGraph(restaurant)).toBe(
      [
        'stateDiagram-v2',
        '    state "any other stage" as any_stage',
        '    [*] --> greet',
        '    greet --> party: keyword#58; book, table, reservation, reserve',
        '    party --> when: toolCall#58; set_party_size',
        '    party --> done: maxTurns#58; 3',
        '    when --> confirm: toolCall#58; set_date_time',
        '    confirm --> done: toolCall#58; confirm_booking',
        '    confirm --> when: keyword#58; change, different',
        '    any_stage --> done: keyword#58; cancel, never mind (priority 10)',
        '    done --> [*]: keyword#58; bye, goodbye',
        '    done --> [*]: timeout#58; 20 s',
        '    classDef wildcard stroke-dasharray: 4 4',
        '    class any_stage wildcard',
      ].join('\n'),
    );
  });

  it('labels every kind of condition, escapes what Mermaid would misread and expands per-stage wildcards', () => {
    const playbook = definePlaybook({
      id: 'all',
      initialStage: 'ask details',
      globalTools: [tool('transfer')],
      stages: {
        'ask details': { systemPrompt: 'Ask.', tools: [tool('save')], maxTurns: 4 },
        note: { systemPrompt: 'A stage named like a Mermaid keyword.', timeoutMs: 1500, maxTurns: 2 },
        human: { systemPrompt: 'Hand over.' },
        idle: { systemPrompt: 'Never reached.' },
      },
      transitions: [
        { from: 'ask details', to: 'note', condition: { type: 'toolCall', tool: 'save', when: (call) => call.ok } },
        { from: 'note', to: 'human', condition: { type: 'llmDecision', description: 'The caller asks for a person: "a human, please"; or is angry' } },
        { from: 'note', to: 'ask details', condition: { type: 'intent', intent: 'restart', classify: () => undefined }, priority: -1 },
        { from: 'note', to: 'end', condition: { type: 'timeout' } },
        { from: 'human', to: 'end', condition: { type: 'custom', label: 'agent: done #1', check: () => false } },
        { from: 'human', to: 'end', condition: { type: 'keyword', keywords: ['goodbye'], source: 'assistant' } },
        { from: '*', to: 'end', condition: { type: 'maxTurns' } },
        { from: '*', to: 'human', condition: { type: 'toolCall', tool: 'transfer' }, priority: 5 },
      ],
    });
    expect(playbookGraph(playbook)).toBe(
      [
        'stateDiagram-v2',
        '    state "ask details" as stage_1',
        '    state "note" as stage_2',
        '    state "any other stage" as any_stage',
        '    [*] --> stage_1',
        '    stage_1 --> stage_2: toolCall#58; save (when …)',
        '    stage_2 --> human: llm#58; The caller asks for a person#58; #quot;a human…',
        '    stage_2 --> stage_1: intent#58; restart (priority -1)',
        '    stage_2 --> [*]: timeout#58; 1.5 s',
        '    human --> [*]: custom#58; agent#58; done #35;1',
        '    human --> [*]: keyword (assistant)#58; goodbye',
        '    stage_1 --> [*]: maxTurns#58; 4',
        '    stage_2 --> [*]: maxTurns#58; 2',
        '    any_stage --> human: toolCall#58; transfer (priority 5)',
        '    idle',
        '    classDef wildcard stroke-dasharray: 4 4',
        '    class any_stage wildcard',
      ].join('\n'),
    );
    // wildcards: 'expand' draws the '*' transition from each stage instead.
    expect(playbookGraph(playbook, { wildcards: 'expand' }).split('\n').filter((line) => line.includes('transfer'))).toEqual([
      '    stage_1 --> human: toolCall#58; transfer (priority 5)',
      '    stage_2 --> human: toolCall#58; transfer (priority 5)',
      '    idle --> human: toolCall#58; transfer (priority 5)',
    ]);
  });

  it('any stage ids and labels give lines Mermaid state-diagram lexing accepts, and labels decode to their text', () => {
    const text = fc.string({ unit: fc.constantFrom(...'ab :;#%"&<>{}-_ \t\n1éTBdirection'.split(''), 'direction TB', '%%', '#58;', 'note', 'default'), minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(fc.uniqueArray(text, { minLength: 2, maxLength: 5 }), fc.array(text, { minLength: 1, maxLength: 3 }), (rawIds, keywords) => {
        const ids = rawIds.filter((id) => !['end', '*'].includes(id) && id.trim() !== '');
        fc.pre(ids.length >= 2 && keywords.every((k) => k.trim() !== ''));
        const [first, second] = ids as [string, string];
        const playbook = definePlaybook({
          id: 'random',
          initialStage: first,
          stages: Object.fromEntries(ids.map((id) => [id, { systemPrompt: 'x' }])),
          transitions: [
            { from: first, to: second, condition: { type: 'keyword', keywords } },
            { from: second, to: 'end', condition: { type: 'custom', label: keywords.join(' '), check: () => true } },
          ],
        });
        const lines = playbookGraph(playbook).split('\n');
        expect(lines[0]).toBe('stateDiagram-v2');
        for (const line of lines.slice(1)) expect(lexesAsMermaidState(line), line).toBe(true);
        const arrow = lines.find((line) => line.includes(' --> ') && !line.startsWith('    [*]'));
        expect(decode(arrow?.split(': ').slice(1).join(': ') ?? '')).toBe(`keyword: ${keywords.join(', ')}`.replace(/\s+/g, ' '));
      }),
    );
  });

  it('escapeText writes Mermaid entity codes for the characters its lexer treats specially', () => {
    expect(escapeText('a: b; c # d %% e "f" <g> & {h}')).toBe('a#58; b#59; c #35; d #37;#37; e #quot;f#quot; #lt;g#gt; #amp; #123;h#125;');
    expect(escapeText('turn\ndirection  LR')).toBe('turn direction#32;LR');
    // Found by the property above: Mermaid's direction rule has no word boundary after TB.
    expect(escapeText('direction TBa')).toBe('direction#32;TBa');
  });
});

/**
 * A line of our diagrams as Mermaid's stateDiagram lexer sees it (packages/mermaid/src/diagrams/
 * state/parser/stateDiagram.jison), after Mermaid replaces `#…;` entity codes before parsing.
 */
function lexesAsMermaidState(line: string): boolean {
  const encoded = line.replace(/#\w+;/g, 'E');
  if (/direction\s+(tb|bt|rl|lr)/i.test(encoded) || encoded.includes('%%') || encoded.includes('#')) return false;
  const id = '(?:\\[\\*\\]|[A-Za-z_][A-Za-z0-9_]*)';
  return (
    new RegExp(`^    ${id} --> ${id}(?:: [^:;\\n]+)?$`).test(encoded) ||
    /^ {4}state "[^"\n]*" as [A-Za-z_][A-Za-z0-9_]*$/.test(encoded) ||
    /^ {4}[A-Za-z_][A-Za-z0-9_]*$/.test(encoded) ||
    encoded === '    classDef wildcard stroke-dasharray: 4 4' ||
    /^ {4}class [A-Za-z_][A-Za-z0-9_]* wildcard$/.test(encoded)
  );
}

function decode(label: string): string {
  const named: Record<string, string> = { quot: '"', amp: '&', lt: '<', gt: '>' };
  return label.replace(/#(\w+);/g, (_, code: string) => (/^\d+$/.test(code) ? String.fromCharCode(Number(code)) : (named[code] ?? code)));
}
