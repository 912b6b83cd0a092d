import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalize, parseDay, parsePartySize, parseTime, RestaurantAgent } from '../../examples/playbook-restaurant/agent.js';
import restaurant from '../../examples/playbook-restaurant/playbook.js';
import { transitionsFrom } from '../../src/playbook/define.js';
import type { Playbook } from '../../src/playbook/types.js';
import type { ChatMessage, LlmEvent, ToolCall } from '../../src/providers/types.js';

// Stages looked up by name at run time: the playbook as any Playbook.
const playbook: Playbook = restaurant;

const SCRIPT = readFileSync(new URL('../../examples/playbook-restaurant/script.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

async function collect(events: AsyncIterable<LlmEvent>): Promise<{ text: string; calls: ToolCall[] }> {
  let text = '';
  const calls: ToolCall[] = [];
  for await (const event of events) {
    if (event.type === 'text') text += event.text;
    if (event.type === 'tool_call') calls.push(event.call);
  }
  return { text, calls };
}

/**
 * The lines through the agent, stage by stage: the reply runs in the current stage (a tool phase,
 * then the spoken answer), then the stage's toolCall, keyword and maxTurns transitions are checked,
 * highest priority first. A stand-in for the playbook runtime, enough to drive the agent.
 */
async function walk(lines: readonly string[]): Promise<{ path: string[]; calls: { tool: string; args: unknown }[]; spoken: string[] }> {
  const agent = new RestaurantAgent();
  let stage: string = playbook.initialStage;
  const path = [stage];
  const calls: { tool: string; args: unknown }[] = [];
  const spoken: string[] = [];
  const history: ChatMessage[] = [];
  let turns = 0;
  for (const line of lines) {
    if (stage === 'end') break;
    const definition = playbook.stages[stage];
    const tools = [...(playbook.globalTools ?? []), ...(definition?.tools ?? [])];
    const system: ChatMessage = { role: 'system', content: `${playbook.globalSystemPrompt ?? ''}\n${definition?.systemPrompt ?? ''}` };
    history.push({ role: 'user', content: line });
    const signal = new AbortController().signal;
    const first = await collect(agent.stream({ messages: [system, ...history], tools, signal }));
    const called: string[] = [];
    if (first.calls.length > 0) {
      history.push({ role: 'assistant', content: '', toolCalls: first.calls });
      for (const call of first.calls) {
        const tool = tools.find((t) => t.name === call.name);
        const args = JSON.parse(call.arguments) as unknown;
        calls.push({ tool: call.name, args });
        const result = await tool?.execute(args, { signal });
        history.push({ role: 'tool', toolCallId: call.id, name: call.name, content: JSON.stringify(result) });
        called.push(call.name);
      }
      const answer = await collect(agent.stream({ messages: [system, ...history], tools, signal }));
      history.push({ role: 'assistant', content: answer.text });
      spoken.push(answer.text);
    } else {
      history.push({ role: 'assistant', content: first.text });
      spoken.push(first.text);
    }
    const words = normalize(line);
    turns++;
    const fired = transitionsFrom(playbook, stage).find(({ transition: { condition } }) => {
      if (condition.type === 'toolCall') return called.includes(condition.tool);
      if (condition.type === 'keyword') return condition.keywords.some((k) => new RegExp(`\\b${k}\\b`).test(words));
      return condition.type === 'maxTurns' && turns >= (definition?.maxTurns ?? Infinity);
    });
    if (fired) {
      stage = fired.transition.to;
      path.push(stage);
      turns = 0;
    }
  }
  return { path, calls, spoken };
}

describe('the restaurant example agent', () => {
  it('walks script.txt through every stage, calling each stage tool with the arguments the caller said', async () => {
    const { path, calls, spoken } = await walk(SCRIPT);
    expect(path).toEqual(['greet', 'party', 'when', 'confirm', 'done', 'end']);
    expect(calls).toEqual([
      { tool: 'set_party_size', args: { people: 4 } },
      { tool: 'set_date_time', args: { day: 'saturday', time: '19:30' } },
      { tool: 'confirm_booking', args: { people: 4, day: 'saturday', time: '19:30' } },
    ]);
    expect(spoken).toEqual([
      "Lovely, let's find you a table.",
      'A table for 4.',
      'What time on Saturday?',
      'On Saturday at 19:30. Shall I book it?',
      'Booked: a table for 4 on Saturday at 19:30. Your confirmation code is TV-4SAT1930.',
      'Thank you for calling Trattoria Voxstate. Goodbye!',
    ]);
  });

  it('cancel leaves any stage for done; three turns without a party size end the booking', async () => {
    expect((await walk(['I want to book a table', 'Actually, cancel that'])).path).toEqual(['greet', 'party', 'done']);
    const stuck = await walk(['book a table', 'hmm', 'let me think', 'not sure']);
    expect(stuck.path).toEqual(['greet', 'party', 'done']);
    expect(stuck.calls).toEqual([]);
    expect(stuck.spoken.slice(1)).toEqual(['How many people will there be?', 'How many people will there be?', 'How many people will there be?']);
  });

  it('a change at confirm goes back to when and keeps the day when only the time changes', async () => {
    const { path, calls } = await walk(['book a table', 'just me', 'tomorrow at 7 pm', 'no, change it please', 'make it 8:15', 'yes']);
    expect(path).toEqual(['greet', 'party', 'when', 'confirm', 'when', 'confirm', 'done']);
    expect(calls.map((c) => c.args)).toEqual([{ people: 1 }, { day: 'tomorrow', time: '19:00' }, { day: 'tomorrow', time: '20:15' }, { people: 1, day: 'tomorrow', time: '20:15' }]);
  });

  it('streams a tool call as one tool_call event with JSON arguments, and speech word by word', async () => {
    const agent = new RestaurantAgent();
    const signal = new AbortController().signal;
    const tools = restaurant.stages.party.tools ?? [];
    const events: LlmEvent[] = [];
    for await (const event of agent.stream({ messages: [{ role: 'user', content: 'a table for 6' }], tools, signal })) events.push(event);
    expect(events).toEqual([{ type: 'tool_call', call: { id: 'call_1_set_party_size', name: 'set_party_size', arguments: '{"people":6}' } }]);
    const words: string[] = [];
    for await (const event of agent.stream({ messages: [{ role: 'user', content: 'hmm' }], tools, signal })) if (event.type === 'text') words.push(event.text);
    expect(words).toEqual(['How ', 'many ', 'people ', 'will ', 'there ', 'be?']);
  });
});

describe('the agent parsers', () => {
  it('party sizes as digits, words and phrases', () => {
    const cases: [string, number | undefined][] = [
      ['There will be four of us', 4],
      ['a table for 2 please', 2],
      ['twenty two people', 22],
      ['just me', 1],
      ['me and my wife', 2],
      ['hmm', undefined],
      ['a hundred', undefined],
    ];
    for (const [text, expected] of cases) expect(parsePartySize(normalize(text)), text).toBe(expected);
  });

  it('times: "seven" and "at 8" mean the evening; am, pm, half past, quarter to, 7:30 and noon', () => {
    const cases: [string, string | undefined][] = [
      ['seven', '19:00'],
      ['at 8', '20:00'],
      ['7 pm', '19:00'],
      ['7PM', '19:00'],
      ['7 p.m.', '19:00'],
      ['11 am', '11:00'],
      ['7:30', '19:30'],
      ['half past seven', '19:30'],
      ['quarter to eight', '19:45'],
      ['seven thirty', '19:30'],
      ['eight o clock', '20:00'],
      ["eight o'clock", '20:00'],
      ['noon', '12:00'],
      ['On Saturday', undefined],
    ];
    for (const [text, expected] of cases) expect(parseTime(normalize(text)), text).toBe(expected);
  });

  it('days: weekdays, today, tomorrow; tonight is today', () => {
    expect(parseDay(normalize('This Saturday'))).toBe('saturday');
    expect(parseDay(normalize('tonight at eight'))).toBe('today');
    expect(parseDay(normalize('Tomorrow!'))).toBe('tomorrow');
    expect(parseDay(normalize('some day'))).toBeUndefined();
  });
});
