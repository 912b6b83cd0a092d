/** Tools in a whole session (virtual time) and through a VoiceServer: what the model is told, what the user hears. */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sleep } from '../../src/clock.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { ChatMessage, Tool } from '../../src/providers/types.js';
import { VoiceServer } from '../../src/server/index.js';
import { Simulation } from '../../src/testing/index.js';
import { defineTool } from '../../src/tools/define.js';
import { RawClient } from '../server/helpers.js';

const toolMessages = (messages: readonly ChatMessage[]) => messages.filter((m): m is Extract<ChatMessage, { role: 'tool' }> => m.role === 'tool');
const parsed = (message: { content: string } | undefined) => JSON.parse(message?.content ?? '{}') as Record<string, unknown>;

describe('tools in a session', () => {
  it('invalid arguments go back to the LLM as tool_invalid_arguments with the zod issues; it retries with good ones and answers', async () => {
    const booked: unknown[] = [];
    const book = defineTool({
      name: 'book_table',
      description: 'Books a table',
      parameters: z.object({ people: z.number().int().min(1).max(12), time: z.string().regex(/^\d\d:\d\d$/) }),
      execute: (args) => {
        booked.push(args);
        return { confirmed: true, ...args };
      },
    });
    const sim = new Simulation({
      tools: [book],
      respond: (messages) => {
        const results = toolMessages(messages);
        if (results.length === 0) return [{ toolCall: { id: 'bad', name: 'book_table', arguments: '{"people":"two","time":"7pm"}' } }];
        if (results.length === 1) return [{ toolCall: { id: 'good', name: 'book_table', arguments: '{"people":2,"time":"19:00"}' } }];
        return ['Booked for two at seven.'];
      },
    }).start();
    sim.type('a table for two at seven');
    await sim.advance(10_000);

    // The LLM's second request carries the refusal with the issues.
    const refusal = toolMessages(sim.llm.requests[1] ?? []).at(-1);
    expect(refusal?.toolCallId).toBe('bad');
    expect(parsed(refusal)).toEqual({
      error: expect.stringContaining("invalid arguments for 'book_table': people: Invalid input: expected number, received string; time:") as string,
      code: 'tool_invalid_arguments',
      issues: [
        { path: ['people'], message: 'Invalid input: expected number, received string' },
        { path: ['time'], message: expect.stringMatching(/^Invalid string/) as string },
      ],
    });
    expect(booked).toEqual([{ people: 2, time: '19:00' }]);
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'Booked for two at seven.' });
    expect(toolMessages(sim.history).map((m) => parsed(m)['code'] ?? 'ok')).toEqual(['tool_invalid_arguments', 'ok']);
    expect(sim.emitted('tools.end').map((e) => e.results[0]?.ok)).toEqual([false, true]);
    expect(sim.emitted('error')).toEqual([]);
    expect(sim.state).toBe('listening');
  });

  it('a tool that throws is a tool_failed result the LLM answers from; the session carries on', async () => {
    const sim = new Simulation({
      tools: [defineTool({ name: 'availability', description: '', parameters: z.object({}), execute: () => Promise.reject(new Error('booking system down')) })],
      respond: (messages) => (messages.at(-1)?.role === 'tool' ? ['Sorry, I cannot check right now.'] : [{ toolCall: { name: 'availability', arguments: '{}' } }]),
    }).start();
    sim.type('anything free tonight?');
    await sim.advance(10_000);
    expect(parsed(toolMessages(sim.history)[0])).toEqual({ error: 'booking system down', code: 'tool_failed' });
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'Sorry, I cannot check right now.' });
    expect(sim.emitted('error')).toEqual([]);
  });

  it('a tool past its timeoutMs is aborted on the session clock and the LLM is told it timed out', async () => {
    let aborted = false;
    const sim = new Simulation({
      tools: [
        defineTool({
          name: 'slow_lookup',
          description: '',
          parameters: z.object({}),
          timeoutMs: 2_000,
          execute: async (_args, { signal }) => {
            signal.addEventListener('abort', () => (aborted = true));
            await sleep(sim.clock, 60_000, signal);
            return 'too late';
          },
        }),
      ],
      respond: (messages) => (messages.at(-1)?.role === 'tool' ? ['That took too long.'] : [{ toolCall: { name: 'slow_lookup', arguments: '{}' } }]),
    }).start();
    sim.type('look it up');
    await sim.advance(1_900);
    expect(sim.state).toBe('thinking');
    expect(aborted).toBe(false);
    await sim.advance(5_000);
    expect(aborted).toBe(true);
    expect(parsed(toolMessages(sim.history)[0])).toEqual({ error: "'slow_lookup' did not finish within 2000 ms", code: 'tool_failed', reason: 'timeout' });
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'That took too long.' });
  });

  it('a barge-in during the tool phase aborts a cancellable tool but not a cancelOnInterrupt: false one, whose result is discarded', async () => {
    const signals: Record<string, AbortSignal> = {};
    let charged = false;
    const search = defineTool({
      name: 'search',
      description: '',
      parameters: z.object({}),
      execute: async (_args, { signal }) => {
        signals['search'] = signal;
        await sleep(sim.clock, 3_000, signal);
        return 'found';
      },
    });
    const charge = defineTool({
      name: 'charge_deposit',
      description: '',
      parameters: z.object({ amount: z.number() }),
      cancelOnInterrupt: false,
      execute: async (args, { signal }) => {
        signals['charge'] = signal;
        await sleep(sim.clock, 3_000, signal);
        charged = true;
        return { charged: args.amount };
      },
    });
    const sim: Simulation = new Simulation({
      tools: [search, charge],
      respond: (messages) =>
        messages.at(-1)?.role === 'tool'
          ? ['Done.']
          : messages.at(-1)?.content === 'book it'
            ? [{ toolCall: { name: 'search', arguments: '{}' } }, { toolCall: { name: 'charge_deposit', arguments: '{"amount":20}' } }]
            : ['Okay, stopped.'],
    }).start();
    sim.type('book it');
    await sim.advance(1_000);
    expect(sim.state).toBe('thinking');
    sim.interrupt();
    await sim.advance(10);
    expect(signals['search']?.aborted).toBe(true);
    expect(signals['charge']?.aborted).toBe(false);
    sim.type('never mind');
    await sim.advance(10_000);
    expect(charged).toBe(true);
    expect(signals['charge']?.aborted).toBe(false);
    // Neither result reached the model or the history: the reply they belonged to was cancelled.
    expect(toolMessages(sim.history)).toEqual([]);
    expect(sim.llm.requests.flatMap(toolMessages)).toEqual([]);
    expect(sim.emitted('tools.end')).toEqual([]);
    expect(sim.history.at(-1)).toEqual({ role: 'assistant', content: 'Okay, stopped.' });
    expect(sim.clock.pendingTimers).toBe(0);
  });
});

describe('tools passed to VoiceServer', () => {
  let server: VoiceServer | undefined;
  let client: RawClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.stop();
    client = undefined;
    server = undefined;
  });

  it('a plain Tool with validate gets the same checks: tool.end carries tool_invalid_arguments and the reply still comes', async () => {
    const strict: Tool = {
      name: 'lookup',
      description: 'Looks a guest up',
      parameters: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      validate: (args) => (typeof (args as { name?: unknown }).name === 'string' ? { ok: true, value: args } : { ok: false, issues: [{ path: ['name'], message: 'Required' }] }),
      execute: async () => 'found',
    };
    server = new VoiceServer({
      port: 0,
      vad: false,
      tools: [strict],
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new FakeLlm({ respond: (messages) => (messages.at(-1)?.role === 'tool' ? ['I need your name.'] : [{ toolCall: { name: 'lookup', arguments: '{}' } }]) }),
        tts: new FakeTts(),
      },
    });
    const { url } = await server.start();
    client = new RawClient(url);
    await client.opened();
    client.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    await client.next('session.ready');
    client.send({ type: 'user.text', text: 'am I booked?' });
    const end = await client.next('tool.end');
    expect(end).toMatchObject({ name: 'lookup', ok: false });
    expect(JSON.parse(String(end['error']))).toEqual({ error: "invalid arguments for 'lookup': name: Required", code: 'tool_invalid_arguments', issues: [{ path: ['name'], message: 'Required' }] });
    expect(await client.next('reply.done')).toMatchObject({ text: 'I need your name.' });
    expect(client.of('error')).toEqual([]);
  });
});
