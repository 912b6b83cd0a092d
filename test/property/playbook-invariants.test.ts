/**
 * Property tests of a playbook run by the session, in virtual time: random typed and spoken turns,
 * barge-ins during the tool phase and during speech, tool latencies and failures, stage timeouts,
 * transport drops and resumes. Whatever happens:
 * - the stage changes form one chain (each `from` is the previous `to`), and the session is never
 *   between stages (it always has the stage the last change named);
 * - a tool runs only while its own stage is the current one (never a tool of a stage that was left);
 * - a drop and resume never change the stage;
 * - the session settles in `listening` with nothing running.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/clock.js';
import type { Playbook } from '../../src/playbook/types.js';
import type { ChatMessage, Tool } from '../../src/providers/types.js';
import { Simulation } from '../../src/testing/index.js';

const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 200);

type Step =
  | { kind: 'type'; text: string }
  | { kind: 'say'; text: string; ms: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'talkOver'; afterMs: number; ms: number }
  | { kind: 'interrupt' }
  | { kind: 'reconnect'; afterMs: number };

const words = ['hello', 'table', 'four', 'friday', 'yes', 'cancel', 'hmm'];
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('type' as const), text: fc.constantFrom(...words) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('say' as const), text: fc.constantFrom(...words), ms: fc.integer({ min: 300, max: 1_500 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4_000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('talkOver' as const), afterMs: fc.integer({ min: 0, max: 1_200 }), ms: fc.integer({ min: 100, max: 1_500 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'interrupt' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reconnect' as const), afterMs: fc.integer({ min: 0, max: 2_000 }) }) },
);

const scenarioArb = fc.record({
  steps: fc.array(stepArb, { minLength: 5, maxLength: 30 }),
  toolMs: fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 5 }),
  toolFails: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
  cancelOnInterrupt: fc.boolean(),
  timeoutMs: fc.option(fc.integer({ min: 1_000, max: 8_000 }), { nil: undefined }),
  llmMs: fc.integer({ min: 0, max: 500 }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** How often each interesting path was exercised (so the invariants are not vacuously true). */
const coverage = new Map<string, number>();
let runs = 0;
const cover = (label: string): void => void coverage.set(label, (coverage.get(label) ?? 0) + 1);

let lastSim: Simulation | undefined;

async function run(scenario: Scenario): Promise<void> {
  runs += 1;
  let sim!: Simulation;
  let calls = 0;
  const ran: { tool: string; stage: string | undefined }[] = [];
  const currentStage = (): string | undefined => sim.actor.getSnapshot().context.stage?.id;
  const tool = (name: string): Tool => ({
    name,
    description: name,
    parameters: { type: 'object' },
    ...(scenario.cancelOnInterrupt ? {} : { cancelOnInterrupt: false }),
    execute: async (_args, { signal }) => {
      const n = calls++;
      ran.push({ tool: name, stage: currentStage() });
      await sleep(sim.clock, scenario.toolMs[n % scenario.toolMs.length] ?? 0, signal);
      if (scenario.toolFails[n % scenario.toolFails.length]) throw new Error(`${name} is down`);
      return { ok: true };
    },
  });
  const playbook: Playbook = {
    id: 'booking',
    initialStage: 'greet',
    stageIds: ['greet', 'party', 'when', 'confirm'],
    stages: {
      greet: { systemPrompt: 'Greet.', tools: [tool('greet_tool')], greeting: 'Hello, how many people?' },
      party: { systemPrompt: 'Party size.', tools: [tool('party_tool')], maxTurns: 3 },
      when: { systemPrompt: 'Date.', tools: [tool('when_tool')], ...(scenario.timeoutMs === undefined ? {} : { timeoutMs: scenario.timeoutMs }) },
      confirm: { systemPrompt: 'Confirm.', tools: [tool('confirm_tool')] },
    },
    transitions: [
      { from: 'greet', to: 'party', condition: { type: 'toolCall', tool: 'greet_tool' } },
      { from: 'greet', to: 'party', condition: { type: 'keyword', keywords: ['table'] } },
      { from: 'party', to: 'when', condition: { type: 'toolCall', tool: 'party_tool' } },
      { from: 'party', to: 'greet', condition: { type: 'maxTurns' } },
      { from: 'when', to: 'confirm', condition: { type: 'toolCall', tool: 'when_tool', when: () => true } },
      ...(scenario.timeoutMs === undefined ? [] : [{ from: 'when' as const, to: 'greet' as const, condition: { type: 'timeout' as const } }]),
      { from: 'confirm', to: 'end', condition: { type: 'keyword', keywords: ['yes'] } },
      { from: '*', to: 'greet', condition: { type: 'keyword', keywords: ['cancel'] }, priority: 5 },
    ],
  };
  // The model calls the current stage's tool on most turns (the tool it was offered, by the system prompt).
  const toolOf: Record<string, string> = { 'Greet.': 'greet_tool', 'Party size.': 'party_tool', 'Date.': 'when_tool', 'Confirm.': 'confirm_tool' };
  sim = new Simulation({
    playbook,
    llm: { firstTokenMs: scenario.llmMs, tokenIntervalMs: 10 },
    tts: { msPerWord: 150 },
    session: { sessionTtlMs: 30_000 },
    respond: (messages: readonly ChatMessage[]) => {
      const last = messages.at(-1);
      const system = messages[0]?.role === 'system' ? messages[0].content : '';
      const name = toolOf[system];
      if (last?.role === 'user' && name !== undefined && !/hmm/.test(last.content)) return ['One moment.', { toolCall: { name, arguments: '{}' } }];
      return ['Alright, noted.'];
    },
  }).start();
  lastSim = sim;

  for (const step of scenario.steps) {
    switch (step.kind) {
      case 'type':
        sim.type(step.text);
        break;
      case 'say':
        if (!sim.speaking) await sim.say(step.text, step.ms);
        break;
      case 'wait':
        await sim.advance(step.ms);
        break;
      case 'talkOver':
        for (let waited = 0; waited < 4_000 && sim.state !== 'speaking' && sim.state !== 'thinking'; waited += 50) await sim.advance(50);
        await sim.advance(step.afterMs);
        if (!sim.speaking) await sim.say('cancel', step.ms);
        break;
      case 'interrupt':
        sim.interrupt();
        break;
      case 'reconnect': {
        if (sim.state === 'suspended' || sim.state === 'closed') break;
        const before = currentStage();
        const changes = sim.emitted('stage.change').length;
        sim.dropTransport();
        await sim.advance(step.afterMs);
        // A drop changes no stage by itself (a timeout may still fire meanwhile).
        if (sim.emitted('stage.change').length === changes) expect(currentStage()).toBe(before);
        sim.resume();
        expect(sim.state).not.toBe('suspended');
        break;
      }
    }
  }
  if (sim.speaking) sim.speechEnd('hmm');
  if (sim.state === 'suspended') sim.resume();
  await sim.advance(60_000);

  // One chain of stage changes, starting at the initial stage; the session always has the last one.
  const changes = sim.emitted('stage.change');
  expect(changes[0]).toMatchObject({ from: null, to: 'greet', reason: { kind: 'start' } });
  for (let i = 1; i < changes.length; i++) expect(changes[i]!.from).toBe(changes[i - 1]!.to);
  const last = changes.at(-1)!;
  expect(currentStage() ?? null).toBe(last.to);
  if (last.to === null) expect(changes.filter((c) => c.to === null)).toHaveLength(1);

  const kinds = new Set(changes.map((c) => c.reason.kind));
  for (const kind of kinds) cover(`stage change by ${kind}`);
  if (changes.length >= 3) cover('three or more stage changes');
  if (sim.emitted('interruption.confirmed').length > 0 && ran.length > 0) cover('barge-in in a run with tool calls');

  // A tool runs only in its own stage.
  for (const call of ran) expect(call.tool, `a tool ran in stage ${String(call.stage)}`).toBe(`${String(call.stage)}_tool`);

  // Settled.
  if (sim.state !== 'closed') {
    expect(sim.state).toBe('listening');
    expect(sim.ledger.open()).toEqual([]);
  }
  sim.close();
  await sim.advance(1);
  expect(sim.clock.pendingTimers).toBe(0);
}

describe('playbook invariants (fast-check, virtual time)', () => {
  it(`hold for random turns, barge-ins in the tool phase, tool failures, timeouts and drops (${RUNS} runs)`, async () => {
    // PROPERTY_REPLAY='<counterexample JSON>' replays one failing scenario (fast-check prints it).
    const replay = process.env['PROPERTY_REPLAY'];
    if (replay !== undefined) {
      const [parsed] = JSON.parse(replay.replace(/undefined/g, 'null')) as [Omit<Scenario, 'timeoutMs'> & { timeoutMs: number | null }];
      const { timeoutMs, ...rest } = parsed;
      try {
        await run({ ...rest, ...(timeoutMs === null ? { timeoutMs: undefined } : { timeoutMs }) });
      } catch (error) {
        for (const r of lastSim?.records ?? []) if (r.kind !== 'frame' && !(r.kind === 'emit' && r.event.type === 'reply.delta')) console.log(r.t, JSON.stringify(r.kind === 'emit' ? r.event : r).slice(0, 160));
        console.log(JSON.stringify(lastSim?.actor.getSnapshot().value), lastSim?.actor.getSnapshot().context.stageRun.pendingChecks);
        throw error;
      }
      return;
    }
    await fc.assert(fc.asyncProperty(scenarioArb, run), { numRuns: RUNS });
    console.log(`coverage over ${runs} runs:\n${[...coverage].sort().map(([k, n]) => `  ${k.padEnd(40)} ${String(n).padStart(5)} ${((100 * n) / runs).toFixed(0).padStart(4)} %`).join('\n')}`);
    for (const label of ['stage change by toolCall', 'stage change by keyword', 'three or more stage changes', 'barge-in in a run with tool calls']) {
      expect((coverage.get(label) ?? 0) / runs, label).toBeGreaterThanOrEqual(0.1);
    }
  }, 300_000);
});
