/**
 * Statechart export (src/inspect/statechart.ts, `voxstate machines export`): the session, reply,
 * motion-link and playbook machines as JSON and Mermaid, checked against the machines themselves
 * and against Mermaid's lexer rules (./mermaid-lint.ts).
 */
import { fileURLToPath } from 'node:url';
import { and, createMachine, not, or, setup, stateIn } from 'xstate';
import { describe, expect, it } from 'vitest';
import { motionLinkMachine } from '../../machines/motion-link.js';
import { createPlaybookMachine } from '../../machines/playbook.js';
import { replyMachine } from '../../machines/reply.js';
import { sessionMachine } from '../../machines/session.js';
import { main } from '../../src/cli/main.js';
import { guardLabel, machineMermaid, type Statechart, statechartMermaid, statechartOf } from '../../src/inspect/statechart.js';
import { loadPlaybookModule } from '../../src/playbook/load.js';
import { lintStateDiagram } from './mermaid-lint.js';

const RESTAURANT = fileURLToPath(new URL('../../examples/playbook-restaurant/playbook.ts', import.meta.url));

function node(chart: Statechart, id: string) {
  const found = chart.nodes.find((n) => n.id === id);
  expect(found, `node ${id}`).toBeDefined();
  return found!;
}

function edges(chart: Statechart, source: string, event: string) {
  return chart.edges.filter((e) => e.source === source && e.event === event);
}

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main(args, (line) => lines.push(line));
  return { code, out: lines.join('\n') };
}

describe('statechartOf', () => {
  it('the session machine: four parallel regions and the public turn states, parents before children', () => {
    const chart = statechartOf(sessionMachine);
    expect(chart.id).toBe('session');
    expect(node(chart, 'session')).toMatchObject({ parent: null, type: 'compound', initial: 'session.active' });
    expect(node(chart, 'session.active').type).toBe('parallel');
    expect(chart.nodes.filter((n) => n.parent === 'session.active').map((n) => n.key)).toEqual(['voice', 'endpoint', 'turn', 'connection']);
    expect(node(chart, 'session.active.turn').initial).toBe('session.active.turn.listening');
    for (const id of ['listening', 'transcribing', 'replying.thinking', 'replying.speaking', 'replying.interrupted.paused', 'routing']) node(chart, `session.active.turn.${id}`);
    expect(node(chart, 'session.closed').type).toBe('final');
    expect(node(chart, 'session.active.turn.replying').invoke).toEqual(['reply']);
    const index = new Map(chart.nodes.map((n, i) => [n.id, i]));
    for (const n of chart.nodes) if (n.parent !== null) expect(index.get(n.parent)).toBeLessThan(index.get(n.id) as number);
  });

  it('the session machine: events, guards (with combinators), delays and invoke outcomes are on the edges', () => {
    const chart = statechartOf(sessionMachine);
    expect(edges(chart, 'session.active.turn.listening', 'eot.decided')).toEqual([{ source: 'session.active.turn.listening', target: 'session.active.turn.transcribing', event: 'eot.decided' }]);
    expect(edges(chart, 'session.active.endpoint.hearing', 'vad.onsetCancelled')[0]?.guard).toBe('!spoke');
    const answers = edges(chart, 'session.active.turn.transcribing', '').map((e) => e.guard);
    expect(answers).toContain('notAwaitingFinals && turnHasTranscript && hasPlaybook');
    const falseInterruption = chart.edges.filter((e) => e.source === 'session.active.turn.replying.interrupted.paused' && e.delay !== undefined);
    expect(falseInterruption.map((e) => [e.delay, e.target, e.guard])).toEqual([
      ['falseInterruptionTimeout', 'session.active.turn.replying.speaking', 'audioStarted'],
      ['falseInterruptionTimeout', 'session.active.turn.replying.thinking', undefined],
    ]);
    expect(falseInterruption[0]?.event).toBe('xstate.after.falseInterruptionTimeout.session.active.turn.replying.interrupted.paused');
    expect(chart.edges.find((e) => e.source === 'session.active.connection.suspended' && e.target === 'session.closed')?.delay).toBe('sessionTtl');
    const detected = chart.edges.filter((e) => e.source === 'session.active.endpoint.deciding.detecting').map((e) => e.event);
    expect(detected.some((e) => e.startsWith('xstate.done.actor.'))).toBe(true);
    expect(detected.some((e) => e.startsWith('xstate.error.actor.'))).toBe(true);
    expect(chart.edges.find((e) => e.source === 'session.active.turn.replying' && e.event === 'user.text' && e.reenter)?.guard).toBe('textNotBlank');
    // Targetless transitions (actions only) are not edges.
    expect(chart.edges.some((e) => e.event === 'reply.delta')).toBe(false);
  });

  it('the reply machine: llm and speech regions, final states, the tools actor and its outcome', () => {
    const chart = statechartOf(replyMachine);
    expect(node(chart, 'reply.active').type).toBe('parallel');
    expect(chart.nodes.filter((n) => n.parent === 'reply.active').map((n) => n.key)).toEqual(['llm', 'speech']);
    expect(node(chart, 'reply.finished').type).toBe('final');
    expect(node(chart, 'reply.active.llm.tooling').invoke).toEqual(['tools']);
    expect(chart.edges.filter((e) => e.source === 'reply.active.llm.streaming' && e.event === 'llm.done').map((e) => e.guard)).toEqual(['hasToolCalls && tooManyRounds', 'hasToolCalls && held', 'hasToolCalls', undefined]);
    expect(edges(chart, 'reply.active.speech.draining', 'playout.drained')[0]?.target).toBe('reply.active.speech.done');
  });

  it('the motion link: live states, the reconnect delay and the guarded retry', () => {
    const chart = statechartOf(motionLinkMachine);
    expect(chart.nodes.filter((n) => n.parent === 'motionLink.live').map((n) => n.key)).toEqual(['connecting', 'ready', 'streaming', 'interrupting']);
    expect(chart.edges.find((e) => e.source === 'motionLink.reconnecting')).toMatchObject({ target: 'motionLink.live', delay: 'reconnectDelay' });
    expect(edges(chart, 'motionLink.live', 'connection.lost').map((e) => [e.target, e.guard])).toEqual([
      ['motionLink.reconnecting', 'canReconnect'],
      ['motionLink.failed', undefined],
    ]);
  });

  it('a compiled playbook machine: the stage timeout and the check it invokes', async () => {
    const chart = statechartOf(createPlaybookMachine(await loadPlaybookModule(RESTAURANT), { now: () => 0 }));
    expect(chart.id).toBe('playbook');
    expect(node(chart, 'playbook.running.checking').invoke).toEqual(['check']);
    expect(chart.edges.filter((e) => e.delay === 'stageTimeout').map((e) => [e.target, e.guard])).toEqual([
      ['playbook.completed', 'hasTimeout && timeoutEnds'],
      ['playbook.running.idle', 'hasTimeout'],
    ]);
  });

  it('guardLabel names combinators, stateIn, parameterized and inline guards', () => {
    expect(guardLabel('ready')).toBe('ready');
    expect(guardLabel({ type: 'enough', params: { n: 2 } })).toBe('enough');
    expect(guardLabel(and(['a', not('b')]))).toBe('a && !b');
    expect(guardLabel(or([and(['a', 'b']), 'c']))).toBe('(a && b) || c');
    expect(guardLabel(stateIn('#m.on'))).toBe('in(#m.on)');
    expect(guardLabel(() => true)).toBe('inline');
  });
});

describe('statechartMermaid', () => {
  for (const [name, machine] of [
    ['session', sessionMachine],
    ['reply', replyMachine],
    ['motion link', motionLinkMachine],
  ] as const) {
    it(`the ${name} chart passes the structural check, with one arrow per edge`, () => {
      const chart = statechartOf(machine);
      const text = statechartMermaid(chart);
      const lint = lintStateDiagram(text);
      expect(lint.problems).toEqual([]);
      expect(lint.states.size).toBe(chart.nodes.length);
      // Every edge is drawn (identical ones once), at the top level; the rest are initial/final markers.
      const drawn = lint.arrows.filter((a) => a.from !== '[*]' && a.to !== '[*]');
      expect(drawn.every((a) => a.block === '')).toBe(true);
      expect(drawn.length).toBe(new Set(chart.edges.map((e) => JSON.stringify([e.source, e.target, e.event, e.guard, e.delay, e.reenter]))).size);
    });
  }

  it('the session chart: parallel regions split by --, guards and delays labelled', () => {
    const text = machineMermaid(sessionMachine);
    const active = text.slice(text.indexOf('state "active" as session_active {'), text.indexOf('state "closed"'));
    expect(active.match(/^\s+--$/gm)?.length).toBe(3);
    expect(text).toContain('session_active_turn_listening --> session_active_turn_transcribing: eot.decided');
    expect(text).toContain('session_active_endpoint_hearing --> session_active_endpoint_idle: vad.onsetCancelled [!spoke]');
    expect(text).toContain('session_active_turn_replying_interrupted_paused --> session_active_turn_replying_speaking: after falseInterruptionTimeout [audioStarted]');
    expect(text).toContain('session_active_endpoint_deciding_detecting --> session_active_endpoint_deciding_waiting: done#58; turnDetector');
    expect(text).toContain('session_active_turn_transcribing --> session_active_turn_replying: always [notAwaitingFinals #amp;#amp; turnHasTranscript]');
    expect(text).toContain('session_closed --> [*]');
  });

  it('awkward state names, guards and delays come out as valid ids and escaped labels', () => {
    const machine = setup({ guards: { 'ok: yes; #1 %%': () => true }, delays: { 'wait direction TB': 10 } }).createMachine({
      id: 'odd-machine',
      initial: 'state',
      states: {
        state: { on: { 'go:now': { target: 'a-b', guard: 'ok: yes; #1 %%' } } },
        'a-b': { after: { 'wait direction TB': 'default x' }, initial: 'h', states: { h: { type: 'history', history: 'deep' }, in: {} } },
        'default x': { after: { 250: 'end' } },
        end: { type: 'final' },
      },
    });
    const chart = statechartOf(machine);
    expect(chart.nodes.find((n) => n.key === 'h')).toMatchObject({ type: 'history', history: 'deep' });
    const text = statechartMermaid(chart);
    const lint = lintStateDiagram(text);
    expect(lint.problems).toEqual([]);
    expect(text).toContain('state "a-b" as odd_machine_a_b {');
    expect(text).toContain('after 250 ms');
    expect(text).toContain('go#58;now [ok#58; yes#59; #35;1 #37;#37;]');
  });

  it('the structural check itself catches what breaks Mermaid', () => {
    const problems = (body: string) => lintStateDiagram(`stateDiagram-v2\n${body}`).problems;
    expect(problems('    state "a" as a\n    state "b" as b\n    a --> b: go')).toEqual([]);
    expect(problems('    state "a" as a\n    state "b" as b\n    a --> b: at 10:30')).toHaveLength(1);
    expect(problems('    state "a" as a\n    state "b" as b\n    a --> b: #1 or %% x')).toHaveLength(1);
    expect(problems('    state "a" as a-b')).toHaveLength(1);
    expect(problems('    state "s" as state')).toHaveLength(1);
    expect(problems('    state "a" as a\n    a --> b')).toEqual(['line 3: b is used before it is declared']);
    expect(problems('    state "a" as a {\n        state "x" as x')).toEqual(['unclosed blocks: a']);
    expect(problems('    state "a" as a\n    --')).toHaveLength(1);
    expect(problems('    state "a" as a {\n        state "x" as x\n    }\n    state "b" as b {\n        [*] --> x\n        state "y" as y\n    }')).toHaveLength(1);
    expect(problems('    state "a" as a\n    state "b" as b\n    a --> b: go direction LR')).toEqual(['line 4: reads as a direction statement']);
  });

  it('a machine without guards or nesting is a flat diagram', () => {
    const text = machineMermaid(createMachine({ id: 'toggle', initial: 'off', states: { off: { on: { flip: 'on' } }, on: { on: { flip: 'off' } } } }));
    expect(lintStateDiagram(text).problems).toEqual([]);
    expect(text.split('\n').slice(-2)).toEqual(['    toggle_off --> toggle_on: flip', '    toggle_on --> toggle_off: flip']);
  });
});

describe('voxstate machines export', () => {
  it('prints the session chart as Mermaid by default', async () => {
    const { code, out } = await run(['machines', 'export']);
    expect(code).toBe(0);
    expect(out).toBe(machineMermaid(sessionMachine));
    expect(lintStateDiagram(out).problems).toEqual([]);
  });

  it('--format json prints { id, nodes, edges } of the machine named', async () => {
    const { code, out } = await run(['machines', 'export', '--machine', 'reply', '--format', 'json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual(statechartOf(replyMachine));
  });

  it('--playbook loads the module and prints its compiled machine', async () => {
    const { code, out } = await run(['machines', 'export', '--playbook', RESTAURANT]);
    expect(code).toBe(0);
    expect(out).toContain('state "checking" as playbook_running_checking');
    expect(lintStateDiagram(out).problems).toEqual([]);
  });

  it('refuses a playbook machine without a module, an unknown machine and an unknown format (exit 2)', async () => {
    expect((await run(['machines', 'export', '--machine', 'playbook'])).code).toBe(2);
    expect((await run(['machines', 'export', '--machine', 'vad'])).code).toBe(2);
    expect((await run(['machines', 'export', '--format', 'svg'])).code).toBe(2);
    expect((await run(['machines', 'draw'])).code).toBe(2);
  });

  it('is in the help', async () => {
    const { out } = await run(['--help']);
    expect(out).toContain('voxstate machines export');
    expect((await run(['machines', '--help'])).out).toContain('--machine <name>');
  });
});
