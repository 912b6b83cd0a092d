/**
 * A small MCP server for the tests, built with the SDK's own McpServer: on streamable HTTP
 * (127.0.0.1, port 0, one transport per MCP session) in-process, or on stdio when run as a script
 * (`node --import tsx test/tools/mcp-server.ts`).
 *
 * Tools: `add` (a + b), `fail` (an isError result), `wait` (runs until the client cancels it),
 * `aborted` (how many calls were cancelled so far), `greet` (a name of at least two letters: a check only the
 * server makes), `calendar.find` (a name the model cannot use as is).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TestMcpState {
  /** Calls of `wait` whose signal the client aborted. */
  aborted: number;
  /** Calls of `wait` that started. */
  waiting: number;
}

export function createTestMcpServer(state: TestMcpState): McpServer {
  const server = new McpServer({ name: 'voxstate-test', version: '1.0.0' });
  server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, ({ a, b }) => ({
    content: [{ type: 'text', text: String(a + b) }],
  }));
  server.registerTool('fail', { description: 'Always fails' }, () => ({ content: [{ type: 'text', text: 'no tables left' }], isError: true }));
  server.registerTool(
    'wait',
    { description: 'Runs until cancelled' },
    (extra) =>
      new Promise((resolve) => {
        state.waiting += 1;
        const done = setTimeout(() => resolve({ content: [{ type: 'text', text: 'waited' }] }), 30_000);
        extra.signal.addEventListener('abort', () => {
          clearTimeout(done);
          state.aborted += 1;
          resolve({ content: [{ type: 'text', text: 'cancelled' }] });
        });
      }),
  );
  server.registerTool('aborted', { description: 'How many calls were cancelled' }, () => ({
    content: [{ type: 'text', text: JSON.stringify(state) }],
  }));
  server.registerTool('greet', { description: 'Greets a guest', inputSchema: { name: z.string().min(2) } }, ({ name }) => ({
    content: [{ type: 'text', text: `Hello ${name}` }],
  }));
  server.registerTool('calendar.find', { description: 'Finds a free slot', inputSchema: { day: z.enum(['friday', 'saturday']) } }, ({ day }) => ({
    content: [{ type: 'text', text: `${day} 19:00` }],
  }));
  return server;
}

export interface HttpMcpServer {
  readonly url: string;
  readonly state: TestMcpState;
  close(): Promise<void>;
}

export async function startHttpMcpServer(): Promise<HttpMcpServer> {
  const state: TestMcpState = { aborted: 0, waiting: 0 };
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const http = createServer((req, res) => {
    void (async () => {
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (transport === undefined) {
        if (id !== undefined) {
          res.writeHead(404).end();
          return;
        }
        const fresh = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sessionId) => void sessions.set(sessionId, fresh) });
        fresh.onclose = () => {
          if (fresh.sessionId !== undefined) sessions.delete(fresh.sessionId);
        };
        await createTestMcpServer(state).connect(fresh);
        transport = fresh;
      }
      await transport.handleRequest(req, res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    state,
    close: async () => {
      await Promise.all([...sessions.values()].map((transport) => transport.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

export const SCRIPT = fileURLToPath(import.meta.url);

if (process.argv[1] === SCRIPT && process.argv.includes('--stdio')) {
  await createTestMcpServer({ aborted: 0, waiting: 0 }).connect(new StdioServerTransport());
}
