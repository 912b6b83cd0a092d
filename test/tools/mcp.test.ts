/** MCP tools against a loopback MCP server written with the SDK (test/tools/mcp-server.ts): over streamable HTTP and over stdio. */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActor, toPromise } from 'xstate';
import { isVoxError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { Tool, ToolCall } from '../../src/providers/types.js';
import { VoiceServer } from '../../src/server/index.js';
import { createToolsActor } from '../../src/session/actors.js';
import { mcpTools, type McpToolset, type McpToolsOptions } from '../../src/tools/mcp.js';
import { RawClient } from '../server/helpers.js';
import { SCRIPT, startHttpMcpServer, type HttpMcpServer } from './mcp-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function round(tools: readonly Tool[], calls: readonly ToolCall[]) {
  const actor = createActor(createToolsActor(tools), { input: { calls } });
  const done = toPromise(actor);
  actor.start();
  return { actor, done };
}

const call = (name: string, args: string, id = 'c1'): ToolCall => ({ id, name, arguments: args });
const content = (result: { content: string } | undefined) => JSON.parse(result?.content ?? '{}') as Record<string, unknown>;

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Fixture {
  connect(settings?: Partial<Pick<McpToolsOptions, 'prefix' | 'timeoutMs' | 'connectTimeoutMs' | 'cancelOnInterrupt'>>): Promise<McpToolset>;
  /** How many `wait` calls the server saw cancelled. */
  aborted(toolset: McpToolset): Promise<number>;
  stop(): Promise<void>;
}

async function httpFixture(): Promise<Fixture> {
  const server: HttpMcpServer = await startHttpMcpServer();
  return {
    connect: (settings = {}) => mcpTools({ transport: 'http', url: server.url, headers: { 'x-test': '1' }, ...settings }),
    aborted: async () => server.state.aborted,
    stop: () => server.close(),
  };
}

async function stdioFixture(): Promise<Fixture> {
  return {
    connect: (settings = {}) => mcpTools({ transport: 'stdio', command: process.execPath, args: ['--import', 'tsx', SCRIPT, '--stdio'], cwd: ROOT, ...settings }),
    // The server runs in another process: ask it.
    aborted: async (toolset) => {
      const stats = toolset.tools.find((tool) => tool.name === 'aborted');
      const [result] = await round(stats === undefined ? [] : [stats], [call('aborted', '{}')]).done;
      return (content(result) as { aborted: number }).aborted;
    },
    stop: async () => undefined,
  };
}

describe.each([
  ['streamable HTTP', httpFixture],
  ['stdio', stdioFixture],
])('mcpTools over %s', (_transport, makeFixture) => {
  let fixture: Fixture;
  let toolset: McpToolset | undefined;
  beforeEach(async () => {
    fixture = await makeFixture();
  });
  afterEach(async () => {
    await toolset?.close();
    toolset = undefined;
    await fixture.stop();
  });

  it("lists the server's tools with their input schema, names the model can use, and the calls' limits", async () => {
    toolset = await fixture.connect({ timeoutMs: 5_000 });
    expect(toolset.tools.map((tool) => tool.name).sort()).toEqual(['aborted', 'add', 'calendar_find', 'fail', 'greet', 'wait']);
    const add = toolset.tools.find((tool) => tool.name === 'add');
    expect(add).toMatchObject({ description: 'Adds two numbers', timeoutMs: 5_000 });
    expect(add?.parameters).toMatchObject({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] });
    expect(add?.parameters).not.toHaveProperty('$schema');
  });

  it('calls go to tools/call: text content is the result, isError is tool_failed, a renamed tool still reaches its server name', async () => {
    toolset = await fixture.connect({ prefix: '' });
    const results = await round(toolset.tools, [call('add', '{"a":2,"b":3}', 'c1'), call('fail', '{}', 'c2'), call('calendar_find', '{"day":"friday"}', 'c3')]).done;
    expect(results).toEqual([
      { callId: 'c1', name: 'add', ok: true, content: '5' },
      { callId: 'c2', name: 'fail', ok: false, content: JSON.stringify({ error: 'no tables left', code: 'tool_failed' }) },
      { callId: 'c3', name: 'calendar_find', ok: true, content: 'friday 19:00' },
    ]);
  });

  it('a missing required property, a wrong type or a value outside an enum is refused locally as tool_invalid_arguments; the rest the server refuses as tool_failed', async () => {
    toolset = await fixture.connect();
    const [local, choice, remote] = await round(toolset.tools, [call('add', '{"a":"2"}', 'c1'), call('calendar_find', '{"day":"monday"}', 'c2'), call('greet', '{"name":"x"}', 'c3')]).done;
    expect(content(local)).toEqual({
      error: "invalid arguments for 'add': b: Invalid input: expected a value, received undefined; a: Invalid input: expected number, received string",
      code: 'tool_invalid_arguments',
      issues: [
        { path: ['b'], message: 'Invalid input: expected a value, received undefined' },
        { path: ['a'], message: 'Invalid input: expected number, received string' },
      ],
    });
    expect(content(choice)).toEqual({
      error: `invalid arguments for 'calendar_find': day: Invalid option: expected one of "friday"|"saturday"`,
      code: 'tool_invalid_arguments',
      issues: [{ path: ['day'], message: 'Invalid option: expected one of "friday"|"saturday"' }],
    });
    // minLength is not checked locally: the server's own validation answers.
    expect(content(remote)).toMatchObject({ code: 'tool_failed', error: expect.stringMatching(/validation/i) as string });
  });

  it('stopping the round (a barge-in) aborts the call and the server sees it cancelled', async () => {
    toolset = await fixture.connect();
    const { actor } = round(toolset.tools, [call('wait', '{}')]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    actor.stop();
    await until(async () => (await fixture.aborted(toolset as McpToolset)) === 1);
  });

  it('a call past timeoutMs is a timeout result and is cancelled on the server', async () => {
    toolset = await fixture.connect({ timeoutMs: 300 });
    const [result] = await round(toolset.tools, [call('wait', '{}')]).done;
    expect(content(result)).toEqual({ error: "'wait' did not finish within 300 ms", code: 'tool_failed', reason: 'timeout' });
    await until(async () => (await fixture.aborted(toolset as McpToolset)) === 1);
  });

  it('close() disconnects once, however often it is called; a call after it is tool_failed', async () => {
    toolset = await fixture.connect();
    await Promise.all([toolset.close(), toolset.close()]);
    expect(toolset.closed).toBe(true);
    const [result] = await round(toolset.tools, [call('add', '{"a":1,"b":1}')]).done;
    expect(content(result)).toMatchObject({ code: 'tool_failed' });
  });
});

describe('mcpTools', () => {
  it('a server that cannot be reached rejects with provider_unavailable naming it', async () => {
    const error: unknown = await mcpTools({ transport: 'http', url: 'http://127.0.0.1:9/mcp', timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(isVoxError(error) && error.code).toBe('provider_unavailable');
    expect((error as Error).message).toContain('http://127.0.0.1:9/mcp');
  });

  it('MCP tools work in a VoiceServer like local ones: the agent calls add and speaks the result', async () => {
    const mcp = await startHttpMcpServer();
    const toolset = await mcpTools({ transport: 'http', url: mcp.url, prefix: 'calc_' });
    const server = new VoiceServer({
      port: 0,
      vad: false,
      tools: toolset.tools,
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new FakeLlm({
          respond: (messages) => {
            const last = messages.at(-1);
            return last?.role === 'tool' ? [`It is ${last.content}.`] : [{ toolCall: { name: 'calc_add', arguments: '{"a":20,"b":22}' } }];
          },
        }),
        tts: new FakeTts(),
      },
    });
    const { url } = await server.start();
    const client = new RawClient(url);
    try {
      await client.opened();
      client.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
      await client.next('session.ready');
      client.send({ type: 'user.text', text: 'what is twenty plus twenty-two?' });
      expect(await client.next('tool.end')).toMatchObject({ name: 'calc_add', ok: true, result: 42 });
      expect(await client.next('reply.done')).toMatchObject({ text: 'It is 42.' });
    } finally {
      await client.close();
      await server.stop();
      await toolset.close();
      await mcp.close();
    }
  });
});
