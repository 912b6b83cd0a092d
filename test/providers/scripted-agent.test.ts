import { describe, expect, it } from 'vitest';
import { ScriptedAgent, parseBooking } from '../../src/providers/local/index.js';
import type { ChatMessage, LlmEvent, ToolSpec } from '../../src/providers/types.js';

const agent = new ScriptedAgent();
const signal = (): AbortSignal => new AbortController().signal;

async function reply(messages: ChatMessage[], tools: ToolSpec[] = []): Promise<{ text: string; events: LlmEvent[] }> {
  const events: LlmEvent[] = [];
  for await (const e of agent.stream({ messages, tools, signal: signal() })) events.push(e);
  return { text: events.flatMap((e) => (e.type === 'text' ? [e.text] : [])).join(''), events };
}

const say = (content: string): ChatMessage[] => [{ role: 'user', content }];

const bookTable: ToolSpec = {
  name: 'book_table',
  description: 'Book a table',
  parameters: { type: 'object', properties: { partySize: { type: 'number' }, date: { type: 'string' }, time: { type: 'string' } } },
};

describe('ScriptedAgent', () => {
  it('announces itself as a scripted agent by name', () => {
    expect(agent.name).toBe('scripted-agent');
    expect(agent.scripted).toBe(true);
  });

  it('greets', async () => {
    expect((await reply(say('Hello there!'))).text).toMatch(/^Hello! I'm the voxstate scripted agent/);
  });

  it('books a table through a booking tool, then confirms from the tool result', async () => {
    const first = await reply(say('Yes, I would like to book a table for two people tomorrow at seven.'), [bookTable]);
    const call = first.events.find((e) => e.type === 'tool_call');
    expect(call).toEqual({
      type: 'tool_call',
      call: { id: expect.any(String), name: 'book_table', arguments: JSON.stringify({ partySize: 2, date: 'tomorrow', time: '19:00' }) },
    });
    if (call?.type !== 'tool_call') throw new Error('no tool call');
    const second = await reply(
      [
        ...say('book a table for two tomorrow at seven'),
        { role: 'assistant', content: '', toolCalls: [call.call] },
        { role: 'tool', toolCallId: call.call.id, name: 'book_table', content: JSON.stringify({ message: 'Table 12 is yours at 19:00' }) },
      ],
      [bookTable],
    );
    expect(second.text).toBe('Done. Table 12 is yours at 19:00.');
  });

  it('asks for what is missing, and without a tool says it cannot book', async () => {
    expect((await reply(say('I want to book a table'))).text).toMatch(/how many people, and at what time\?$/);
    expect((await reply(say('book a table for 4 at 8pm'))).text).toBe(
      'I would book a table for 4 people at 20:00, but I am a scripted demo agent without a booking system.',
    );
  });

  it('calls a weather tool when there is one, otherwise says it is offline', async () => {
    const weatherTool: ToolSpec = { name: 'get_weather', description: '', parameters: { type: 'object', properties: { city: {} } } };
    const withTool = await reply(say("What's the weather in Paris?"), [weatherTool]);
    expect(withTool.events[0]).toMatchObject({ type: 'tool_call', call: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
    expect((await reply(say("What's the weather in Paris?"))).text).toBe("I'm running offline, so I can't look up the weather in Paris. I hope it's sunny.");
  });

  it('does sums and repeats numbers', async () => {
    expect((await reply(say('what is twelve plus 30'))).text).toBe('12 plus 30 is 42.');
    expect((await reply(say('my code is 4 7 9'))).text).toBe('I heard the numbers 4, 7 and 9.');
  });

  it('echoes anything else', async () => {
    expect((await reply(say('The cat sat on the mat.'))).text).toBe('You said: The cat sat on the mat.');
  });

  it("opens a stage with the line its system prompt asks for", async () => {
    const { text } = await reply([{ role: 'system', content: 'Stage: verification. Say "Can you confirm your date of birth?" and wait.' }]);
    expect(text).toBe('Can you confirm your date of birth?');
  });

  it('custom rules come first', async () => {
    const custom = new ScriptedAgent({ rules: [{ name: 'ping', respond: (c) => (c.normalized === 'ping' ? { say: 'pong' } : undefined) }] });
    const events: LlmEvent[] = [];
    for await (const e of custom.stream({ messages: say('Ping!'), signal: signal() })) events.push(e);
    expect(events[0]).toEqual({ type: 'text', text: 'pong' });
  });

  it('streams word by word and stops on abort', async () => {
    const slow = new ScriptedAgent({ wordDelayMs: 5 });
    const controller = new AbortController();
    const words: string[] = [];
    const run = async (): Promise<void> => {
      for await (const e of slow.stream({ messages: say('the quick brown fox jumps over'), signal: controller.signal })) {
        if (e.type === 'text') words.push(e.text);
        if (words.length === 2) controller.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'provider_aborted' });
    expect(words).toEqual(['You ', 'said: ']);
  });

  it('parses party size, date and time', () => {
    expect(parseBooking('a table for six on friday at 7 30 pm')).toEqual({ partySize: 6, date: 'friday', time: '19:30' });
    expect(parseBooking('party of 3 at 11 am')).toEqual({ partySize: 3, time: '11:00' });
  });
});
