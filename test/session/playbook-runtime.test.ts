/**
 * A playbook run by the session (machines/playbook.ts as the session's `playbook` child), in virtual
 * time: stage prompts and tools reach the LLM, transitions fire with their real reason, greetings are
 * spoken, timeouts and completion are reported.
 */
import { describe, expect, it } from 'vitest';
import type { ChatMessage, Tool } from '../../src/providers/types.js';
import type { Playbook } from '../../src/playbook/types.js';
import { Simulation } from '../../src/testing/index.js';

const tool = (name: string, run: (args: Record<string, unknown>) => unknown = () => ({ ok: true })): Tool => ({
  name,
  description: name,
  parameters: { type: 'object', properties: { n: { type: 'number' } } },
  execute: async (args) => run(args as Record<string, unknown>),
});

function playbook(overrides: Partial<Playbook> = {}): Playbook {
  const base: Playbook = {
    id: 'booking',
    initialStage: 'greet',
    stageIds: ['greet', 'party', 'confirm'],
    globalSystemPrompt: 'You are the host of a small restaurant.',
    stages: {
      greet: { systemPrompt: 'Greet the guest.', greeting: 'Welcome! How many people?' },
      party: { systemPrompt: 'Ask for the party size.', tools: [tool('set_party_size')], maxTurns: 3 },
      confirm: { systemPrompt: 'Confirm the booking.', greeting: 'Shall I book it?', timeoutMs: 10_000 },
    },
    transitions: [
      { from: 'greet', to: 'party', condition: { type: 'keyword', keywords: ['table', 'book'] } },
      { from: 'party', to: 'confirm', condition: { type: 'toolCall', tool: 'set_party_size' } },
      { from: 'confirm', to: 'end', condition: { type: 'keyword', keywords: ['yes'] } },
      { from: 'confirm', to: 'greet', condition: { type: 'timeout' } },
      { from: '*', to: 'end', condition: { type: 'keyword', keywords: ['cancel'] }, priority: 10 },
    ],
  };
  return { ...base, ...overrides };
}

describe('playbook in a session', () => {
  it('walks its stages: greeting, keyword, tool call; prompts and tools per stage; stage.change with reasons', async () => {
    const prompts: string[] = [];
    const sim = new Simulation({
      playbook: playbook(),
      respond: (messages: readonly ChatMessage[]) => {
        prompts.push(messages[0]?.role === 'system' ? messages[0].content : '');
        const last = messages.at(-1);
        if (last?.role === 'user' && /four/.test(last.content)) return [{ toolCall: { name: 'set_party_size', arguments: '{"n":4}' } }];
        if (last?.role === 'tool') return ['Four people, noted.'];
        return ['Sure.'];
      },
    }).start();
    await sim.advance(3_000);
    // The initial stage's greeting is spoken without the LLM.
    expect(sim.emitted('stage.change')).toEqual([{ type: 'stage.change', from: null, to: 'greet', reason: { kind: 'start' }, data: undefined, stages: {} }]);
    expect(sim.history).toEqual([{ role: 'assistant', content: 'Welcome! How many people?' }]);
    sim.type('I would like a table');
    await sim.advance(3_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'greet', to: 'party', reason: { kind: 'keyword', keyword: 'table' } });
    // The reply to that turn speaks in the new stage.
    expect(prompts.at(-1)).toBe('You are the host of a small restaurant.\n\nAsk for the party size.');
    sim.type('four of us');
    await sim.advance(5_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'party', to: 'confirm', reason: { kind: 'toolCall', tool: 'set_party_size' } });
    expect(sim.emitted('tools.start').map((e) => e.calls[0]?.name)).toEqual(['set_party_size']);
    // The confirm greeting is spoken once the reply that led there has ended.
    expect(sim.history.filter((m) => m.role === 'assistant').map((m) => m.content)).toContain('Shall I book it?');
    sim.type('yes please');
    await sim.advance(3_000);
    expect(sim.emitted('stage.change').at(-1)).toEqual({ type: 'stage.change', from: 'confirm', to: null, reason: { kind: 'keyword', keyword: 'yes' }, data: undefined, stages: {} });
  });

  it("a tool of another stage never runs: the model calling it gets tool_unknown", async () => {
    let ran = 0;
    const pb = playbook();
    const guarded: Playbook = { ...pb, stages: { ...pb.stages, party: { ...pb.stages['party']!, tools: [tool('set_party_size', () => ++ran)] } } };
    const sim = new Simulation({
      playbook: guarded,
      respond: (m) => (m.at(-1)?.role === 'tool' ? ['Hm.'] : [{ toolCall: { name: 'set_party_size', arguments: '{"n":2}' } }]),
    }).start();
    await sim.advance(2_000);
    sim.type('hello'); // still in greet, which has no tools
    await sim.advance(3_000);
    expect(ran).toBe(0);
    expect(sim.emitted('tools.end')[0]?.results[0]).toMatchObject({ name: 'set_party_size', ok: false });
    expect(sim.emitted('tools.end')[0]?.results[0]?.content).toContain('tool_unknown');
  });

  it("a stage's model settings, tool choice and tools reach the LLM; a reset stage's replies see only the conversation since its entry", async () => {
    const pb = playbook();
    const tuned: Playbook = {
      ...pb,
      stages: {
        ...pb.stages,
        party: { ...pb.stages['party']!, llm: { model: 'small', temperature: 0.2, maxTokens: 64 }, toolChoice: 'required', contextStrategy: 'reset' },
      },
    };
    const sim = new Simulation({ playbook: tuned, respond: () => ['Ok.'] }).start();
    await sim.advance(2_000);
    sim.type('a table please');
    await sim.advance(3_000);
    const call = sim.llm.calls.at(-1)!;
    expect(call).toMatchObject({ model: 'small', temperature: 0.2, maxTokens: 64, toolChoice: 'required' });
    expect(call.tools?.map((t) => t.name)).toEqual(['set_party_size']);
    // The greeting came before the stage: the stage's replies start with the turn that led to it.
    expect(call.messages.filter((m) => m.role !== 'system').map((m) => m.content)).toEqual(['a table please']);
    sim.type('two of us');
    await sim.advance(3_000);
    expect(sim.llm.calls.at(-1)!.messages.filter((m) => m.role !== 'system').map((m) => m.content)).toEqual(['a table please', 'Ok.', 'two of us']);
  });

  it('intent, custom and llmDecision transitions: a classifier, an app check, and the stage tool restricted to the allowed targets', async () => {
    const seen: string[] = [];
    const pb: Playbook = {
      id: 'support',
      initialStage: 'triage',
      stageIds: ['triage', 'billing', 'tech', 'human'],
      stages: {
        triage: { systemPrompt: 'Find out what the caller needs.' },
        billing: { systemPrompt: 'Billing.' },
        tech: { systemPrompt: 'Tech support.' },
        human: { systemPrompt: 'Hand over.' },
      },
      transitions: [
        { from: 'triage', to: 'billing', condition: { type: 'intent', intent: 'billing', classify: (text) => (seen.push(text), /invoice|bill/.test(text) ? 'billing' : undefined) } },
        { from: 'billing', to: 'tech', condition: { type: 'llmDecision', description: 'the problem is technical, not about money' } },
        { from: 'tech', to: 'human', condition: { type: 'custom', label: 'asked twice', check: (ctx) => ctx.turns >= 2 } },
      ],
    };
    const sim = new Simulation({
      playbook: pb,
      respond: (messages) => {
        const last = messages.at(-1);
        const system = messages[0]?.role === 'system' ? messages[0].content : '';
        if (system === 'Billing.' && last?.role === 'user' && /crash/.test(last.content)) return [{ toolCall: { name: 'change_stage', arguments: '{"target":"tech"}' } }];
        return ['Okay.'];
      },
    }).start();
    sim.type('my invoice is wrong');
    await sim.advance(2_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'triage', to: 'billing', reason: { kind: 'intent', intent: 'billing' } });
    expect(seen).toEqual(['my invoice is wrong']);
    // In billing the model is offered the stage tool, whose only target is tech.
    const offered = sim.llm.calls.at(-1)!.tools?.find((t) => t.name === 'change_stage');
    expect(offered?.parameters).toMatchObject({ properties: { target: { enum: ['tech'] } } });
    sim.type('actually the app crashes');
    await sim.advance(3_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'billing', to: 'tech', reason: { kind: 'llmDecision' } });
    sim.type('it still crashes');
    await sim.advance(2_000);
    expect(sim.emitted('stage.change').at(-1)?.to).toBe('tech');
    sim.type('please help');
    await sim.advance(2_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'tech', to: 'human', reason: { kind: 'custom', label: 'asked twice' } });
  });

  it('a summarize stage: the LLM summarizes what came before; the stage\'s replies see the summary and the conversation since', async () => {
    const pb = playbook();
    const summarizing: Playbook = { ...pb, stages: { ...pb.stages, party: { ...pb.stages['party']!, contextStrategy: 'summarize' } } };
    const sim = new Simulation({
      playbook: summarizing,
      respond: (messages) => (/^Summarize the conversation/.test(messages[0]?.role === 'system' ? messages[0].content : '') ? ['The guest was welcomed.'] : ['Ok.']),
    }).start();
    await sim.advance(2_000);
    sim.type('a table please');
    await sim.advance(3_000);
    const summaryCall = sim.llm.calls.find((c) => /^Summarize/.test(c.messages[0]?.role === 'system' ? c.messages[0].content : ''));
    expect(summaryCall?.messages[1]).toEqual({ role: 'user', content: 'Assistant: Welcome! How many people?' });
    expect(summaryCall?.tools).toBeUndefined();
    sim.type('two of us');
    await sim.advance(3_000);
    const seen = sim.llm.calls.at(-1)!.messages.filter((m, i) => i > 0).map((m) => `${m.role}: ${m.content}`);
    expect(seen).toEqual(['system: Earlier in this conversation: The guest was welcomed.', 'user: a table please', 'assistant: Ok.', 'user: two of us']);
  });

  it('a stage timeout takes its transition; a higher-priority transition wins', async () => {
    const sim = new Simulation({ playbook: playbook(), respond: (m) => (/four/.test(String(m.at(-1)?.content)) ? [{ toolCall: { name: 'set_party_size', arguments: '{"n":4}' } }] : ['Ok.']) }).start();
    await sim.advance(2_000);
    sim.type('book a table');
    await sim.advance(2_000);
    sim.type('four');
    await sim.advance(3_000);
    expect(sim.emitted('stage.change').at(-1)?.to).toBe('confirm');
    await sim.advance(11_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'confirm', to: 'greet', reason: { kind: 'timeout', afterMs: 10_000 } });
    sim.type('cancel that table'); // both 'book'-less keyword rules: cancel (priority 10) beats table
    await sim.advance(2_000);
    expect(sim.emitted('stage.change').at(-1)).toMatchObject({ from: 'greet', to: null, reason: { kind: 'keyword', keyword: 'cancel' } });
  });
});
