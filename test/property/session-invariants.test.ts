/**
 * Property tests of the session statechart: random interleavings of speech, silence, typed text,
 * interrupts, transport drops and resumes, with random provider latencies and failures, all in
 * virtual time. Every run checks the five invariants of DESIGN.md.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../src/testing/index.js';
import type { ChatMessage } from '../../src/providers/types.js';

const MS_PER_WORD = 200;
const FRAME_MS = 20;
const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 200);

type Step =
  | { kind: 'speechStart' }
  | { kind: 'speechEnd'; empty: boolean }
  | { kind: 'wait'; ms: number }
  | { kind: 'type' }
  | { kind: 'interrupt' }
  | { kind: 'partial'; words: number }
  | { kind: 'drop' }
  | { kind: 'resume'; valid: boolean };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'speechStart' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('speechEnd' as const), empty: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 100, max: 3_000 })) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'type' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'interrupt' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('partial' as const), words: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('resume' as const), valid: fc.boolean() }) },
);

const scenarioArb = fc.record({
  steps: fc.array(stepArb, { minLength: 1, maxLength: 40 }),
  sttLatency: fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 8 }),
  llmLatency: fc.array(fc.integer({ min: 0, max: 800 }), { minLength: 1, maxLength: 8 }),
  ttsLatency: fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 8 }),
  replyWords: fc.array(fc.integer({ min: 1, max: 14 }), { minLength: 1, maxLength: 8 }),
  failures: fc.record({
    stt: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }),
    llm: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }),
    tts: fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 3 }),
  }),
  useTool: fc.boolean(),
  settings: fc.record({
    minInterruptionMs: fc.integer({ min: 0, max: 800 }),
    minInterruptionWords: fc.integer({ min: 0, max: 3 }),
    falseInterruptionTimeoutMs: fc.integer({ min: 0, max: 1_500 }),
    sessionTtlMs: fc.integer({ min: 500, max: 6_000 }),
  }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

const pick = (list: readonly number[], n: number): number => list[(n - 1) % list.length] ?? 0;
const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);

async function run(scenario: Scenario): Promise<void> {
  let failing = true;
  let llmCalls = 0;
  const fails = (list: readonly number[]) => (n: number) => failing && list.includes(n);
  const sim = new Simulation({
    session: { ...scenario.settings, history: { maxMessages: 10_000, maxChars: 10_000_000 } },
    stt: { latencyMs: (n) => pick(scenario.sttLatency, n), fail: fails(scenario.failures.stt) },
    llm: { firstTokenMs: (n) => pick(scenario.llmLatency, n), tokenIntervalMs: 10, fail: fails(scenario.failures.llm) },
    tts: { msPerWord: MS_PER_WORD, firstChunkMs: (n) => pick(scenario.ttsLatency, n), fail: fails(scenario.failures.tts) },
    tools: [{ name: 'lookup', description: 'looks up', parameters: { type: 'object' }, execute: async () => ({ ok: 1 }) }],
    respond: (messages: readonly ChatMessage[]) => {
      llmCalls += 1;
      const last = messages.at(-1);
      if (scenario.useTool && last?.role === 'user' && llmCalls % 2 === 1) {
        return ['Let me check.', { toolCall: { name: 'lookup', arguments: '{}' } }];
      }
      const n = pick(scenario.replyWords, llmCalls);
      return [`${Array.from({ length: n }, (_, i) => `r${llmCalls}w${i}`).join(' ')}.`];
    },
  });

  const violations: string[] = [];
  sim.actor.subscribe(() => {
    if (sim.liveReplies() > 1) violations.push(`two replies alive at ${sim.clock.now()} ms`);
  });
  sim.start();

  let userIndex = 0;
  const nextUserText = () => `u${userIndex++}`;
  let historyAtDrop: readonly ChatMessage[] | undefined;

  for (const step of scenario.steps) {
    switch (step.kind) {
      case 'speechStart':
        sim.speechStart();
        break;
      case 'speechEnd':
        sim.speechEnd(step.empty ? '' : nextUserText());
        break;
      case 'wait':
        await sim.advance(step.ms);
        break;
      case 'type':
        sim.type(nextUserText());
        break;
      case 'interrupt':
        sim.interrupt();
        break;
      case 'partial':
        sim.partial(Array.from({ length: step.words }, () => 'wait').join(' '));
        break;
      case 'drop':
        if (sim.state !== 'suspended' && sim.state !== 'closed') historyAtDrop = sim.history;
        sim.dropTransport();
        break;
      case 'resume': {
        const wasSuspended = sim.state === 'suspended';
        const refusedBefore = sim.emitted('session.resumeRefused').length;
        sim.resume(step.valid ? sim.resumeToken : 'forged-token');
        if (wasSuspended && !step.valid) {
          // Invariant 5: a wrong token is refused and changes nothing.
          expect(sim.state).toBe('suspended');
          expect(sim.emitted('session.resumeRefused').length).toBe(refusedBefore + 1);
        }
        if (wasSuspended && step.valid && historyAtDrop !== undefined) {
          // Invariant 5: resume within TTL restores the history: what was there is still there, and
          // only the reply that was live at the drop may have added to it (its tool round, its
          // heard part) — never a user turn.
          expect(sim.state).not.toBe('suspended');
          expect(sim.history.slice(0, historyAtDrop.length)).toEqual(historyAtDrop);
          for (const added of sim.history.slice(historyAtDrop.length)) expect(added.role).not.toBe('user');
        }
        break;
      }
    }
  }

  // Input stops and providers answer: the session must come back to listening (invariant 3).
  failing = false;
  if (sim.speaking) sim.speechEnd(nextUserText());
  if (sim.state === 'suspended') sim.resume();
  await sim.advance(120_000);
  const settled = sim.state;
  if (settled !== 'closed') {
    expect(settled).toBe('listening.idle');
    expect(sim.ledger.open()).toEqual([]); // invariant 4: nothing left running at rest
  }

  // Invariant 1: at most one reply, and no audio of a reply after it ended.
  expect(violations).toEqual([]);
  const endedAt = new Map<number, number>();
  for (const record of sim.records) {
    if (record.kind === 'emit' && record.event.type === 'reply.done') endedAt.set(record.event.replyId, record.seq);
    if (record.kind === 'frame') {
      const end = endedAt.get(record.replyId);
      if (end !== undefined) throw new Error(`frame of reply ${record.replyId} at seq ${record.seq} after it ended at seq ${end}`);
    }
  }

  // Invariant 2: each reply's history entry is exactly the words whose audio was played.
  const done = sim.emitted('reply.done');
  const spoken: ChatMessage[] = [];
  for (const reply of done) {
    const heardWords = Math.floor((sim.framesOf(reply.replyId) * FRAME_MS) / MS_PER_WORD);
    expect(words(reply.text).length, `reply ${reply.replyId}`).toBe(heardWords);
    if (!reply.interrupted) expect(sim.framesOf(reply.replyId) * FRAME_MS).toBe(heardWords * MS_PER_WORD);
    if (reply.text.length > 0) spoken.push(reply.interrupted ? { role: 'assistant', content: reply.text, interrupted: true } : { role: 'assistant', content: reply.text });
  }
  const history = sim.history;
  expect(history.filter((m) => m.role === 'assistant' && m.toolCalls === undefined)).toEqual(spoken);

  // ... and each user utterance appears once, in order.
  const userIds = history.filter((m) => m.role === 'user').flatMap((m) => words(m.content).map((w) => Number(w.slice(1))));
  for (let i = 1; i < userIds.length; i++) expect(userIds[i]).toBeGreaterThan(userIds[i - 1] as number);
  for (const final of sim.emitted('transcript.final')) {
    expect(history.some((m) => m.role === 'user' && m.content === final.text)).toBe(true);
  }

  // Invariant 4: closing leaves no live actor, provider call or timer.
  if (sim.state !== 'closed') sim.close();
  await sim.advance(1);
  expect(sim.state).toBe('closed');
  expect(sim.actor.getSnapshot().status).toBe('done');
  const alive = Object.entries(sim.actor.getSnapshot().children).filter(([, child]) => child?.getSnapshot().status === 'active');
  expect(alive.map(([id]) => id)).toEqual([]);
  expect(sim.ledger.open()).toEqual([]);
  expect(sim.clock.pendingTimers).toBe(0);
}

describe('session invariants (fast-check, virtual time)', () => {
  it(`hold for any interleaving of user input, transport loss and provider behaviour (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, run), { numRuns: RUNS });
  }, 300_000);
});
