/** The tools actor on its own: one round of calls in, the results the model is told out. */
import { describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import { z } from 'zod';
import { ConfigError } from '../../src/errors.js';
import type { Tool, ToolCall } from '../../src/providers/types.js';
import { createToolsActor } from '../../src/session/actors.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';
import { defineTool } from '../../src/tools/define.js';

function call(name: string, args: string, id = 'c1'): ToolCall {
  return { id, name, arguments: args };
}

function run(tools: readonly Tool[], calls: readonly ToolCall[], clock?: VirtualClock) {
  const actor = createActor(createToolsActor(tools), { input: { calls }, ...(clock === undefined ? {} : { clock }) });
  const done = toPromise(actor);
  actor.start();
  return { actor, done };
}

const content = (result: { content: string } | undefined): Record<string, unknown> => JSON.parse(result?.content ?? '{}') as Record<string, unknown>;

describe('createToolsActor', () => {
  const executed: unknown[] = [];
  const book = defineTool({
    name: 'book',
    description: 'Books a table',
    parameters: z.object({ people: z.number().int().min(1), date: z.iso.date() }),
    execute: (args) => {
      executed.push(args);
      return { booked: args.people };
    },
  });

  it('arguments that break the zod schema are a tool_invalid_arguments result with the issues, and execute never runs', async () => {
    executed.length = 0;
    const [result] = await run([book], [call('book', '{"people":0,"date":"soon"}')]).done;
    expect(result?.ok).toBe(false);
    expect(content(result)).toEqual({
      error: expect.stringMatching(/^invalid arguments for 'book': people: Too small.*; date: Invalid ISO date$/) as string,
      code: 'tool_invalid_arguments',
      issues: [
        { path: ['people'], message: 'Too small: expected number to be >=1' },
        { path: ['date'], message: 'Invalid ISO date' },
      ],
    });
    expect(executed).toEqual([]);
  });

  it('text that is not JSON is tool_invalid_arguments with the parser message as the issue', async () => {
    const [result] = await run([book], [call('book', '{people: two')]).done;
    expect(content(result)).toMatchObject({ error: 'arguments are not valid JSON', code: 'tool_invalid_arguments', issues: [{ path: [] }] });
  });

  it('valid arguments reach execute parsed, and the result is serialized', async () => {
    executed.length = 0;
    const [result] = await run([book], [call('book', '{"people":2,"date":"2026-12-24"}')]).done;
    expect(result).toEqual({ callId: 'c1', name: 'book', ok: true, content: '{"booked":2}' });
    expect(executed).toEqual([{ people: 2, date: '2026-12-24' }]);
  });

  it('a tool that throws is a tool_failed result with its message; an unknown tool is tool_unknown', async () => {
    const broken: Tool = { name: 'broken', description: '', parameters: { type: 'object' }, execute: () => Promise.reject(new Error('kitchen closed')) };
    const results = await run([broken], [call('broken', '{}', 'c1'), call('teleport', '{}', 'c2')]).done;
    expect(results.map(content)).toEqual([
      { error: 'kitchen closed', code: 'tool_failed' },
      { error: "unknown tool 'teleport'", code: 'tool_unknown' },
    ]);
  });

  it('a plain Tool without validate still gets the parsed JSON as it is', async () => {
    const echo: Tool = { name: 'echo', description: '', parameters: {}, execute: async (args) => args };
    const [result] = await run([echo], [call('echo', '{"anything":[1,2]}')]).done;
    expect(result?.content).toBe('{"anything":[1,2]}');
  });

  it('a call past its timeoutMs is a tool_failed result with reason timeout, and its signal is aborted', async () => {
    const clock = new VirtualClock();
    let signal: AbortSignal | undefined;
    const slow = defineTool({
      name: 'slow',
      description: '',
      parameters: z.object({}),
      timeoutMs: 500,
      execute: (_args, context) => {
        signal = context.signal;
        return new Promise<string>(() => undefined); // never settles, ignores its signal
      },
    });
    const { done } = run([slow], [call('slow', '{}')], clock);
    await clock.advance(499);
    expect(signal?.aborted).toBe(false);
    await clock.advance(1);
    const [result] = await done;
    expect(content(result)).toEqual({ error: "'slow' did not finish within 500 ms", code: 'tool_failed', reason: 'timeout' });
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as Error).name).toBe('TimeoutError');
    expect(clock.pendingTimers).toBe(0);
  });

  it('the actor-level timeoutMs applies to tools without their own', async () => {
    const clock = new VirtualClock();
    const hang: Tool = { name: 'hang', description: '', parameters: {}, execute: () => new Promise(() => undefined) };
    const actor = createActor(createToolsActor([hang], { timeoutMs: 100 }), { input: { calls: [call('hang', '')] }, clock });
    const done = toPromise(actor);
    actor.start();
    await clock.advance(100);
    expect(content((await done)[0])).toMatchObject({ code: 'tool_failed', reason: 'timeout' });
  });

  it('stopping the actor aborts a cancellable call but not a cancelOnInterrupt: false one, which runs to completion', async () => {
    const clock = new VirtualClock();
    const signals: Record<string, AbortSignal> = {};
    let charged = false;
    const search: Tool = { name: 'search', description: '', parameters: {}, execute: (_a, { signal }) => ((signals['search'] = signal), new Promise(() => undefined)) };
    const charge: Tool = {
      name: 'charge',
      description: '',
      parameters: {},
      cancelOnInterrupt: false,
      execute: async (_a, { signal }) => {
        signals['charge'] = signal;
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 1_000));
        charged = true;
        return 'charged';
      },
    };
    const { actor } = run([search, charge], [call('search', '{}', 'c1'), call('charge', '{}', 'c2')], clock);
    await clock.advance(10);
    actor.stop();
    expect(signals['search']?.aborted).toBe(true);
    expect(signals['charge']?.aborted).toBe(false);
    await clock.advance(1_000);
    expect(charged).toBe(true);
    expect(signals['charge']?.aborted).toBe(false);
  });

  it('refuses two tools with one name and a timeout that is not a positive number', () => {
    const tool: Tool = { name: 'dup', description: '', parameters: {}, execute: async () => 1 };
    expect(() => createToolsActor([tool, tool])).toThrow(ConfigError);
    expect(() => createToolsActor([{ ...tool, timeoutMs: -1 }])).toThrow(/tools\.dup\.timeoutMs/);
    expect(() => createToolsActor([], { timeoutMs: Number.NaN })).toThrow(/timeoutMs/);
  });
});
