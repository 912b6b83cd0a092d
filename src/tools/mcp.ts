/**
 * Tools from an MCP server (stdio or streamable HTTP) through `@modelcontextprotocol/sdk`: the
 * server's `tools/list` becomes `Tool`s that the session lists and calls like local ones. A call
 * goes to `tools/call` with the call's abort signal (the SDK tells the server with
 * `notifications/cancelled`); text content becomes the result, an `isError` result a `tool_failed`
 * one. Arguments get a small local check against the tool's `inputSchema` (src/tools/json-schema.ts)
 * so the common mistakes come back as `tool_invalid_arguments` with paths; the server checks the rest.
 *
 * The SDK is loaded on the first `mcpTools()` call, so importing voxstate does not load it.
 */
import { createRequire } from 'node:module';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ConfigError, ProviderError, ToolError } from '../errors.js';
import type { Tool, ToolContext, ToolValidation } from '../providers/types.js';
import { checkJsonSchema } from './json-schema.js';

/** An MCP server run as a child process speaking JSON-RPC on its stdin/stdout. */
export interface McpStdioServer {
  readonly transport: 'stdio';
  readonly command: string;
  readonly args?: readonly string[];
  /** Added to the SDK's default environment for the child (PATH, HOME, … — not the whole parent environment). */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** An MCP server reached over streamable HTTP. */
export interface McpHttpServer {
  readonly transport: 'http';
  readonly url: string | URL;
  /** Sent with every request (e.g. `authorization`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface McpToolsSettings {
  /** Put before every tool name the model sees (e.g. `calendar_`), to keep two servers' tools apart. Default ''. */
  readonly prefix?: string;
  /** The time limit of each call (the tools' `timeoutMs`). Default 60 000 ms (the SDK's request timeout). */
  readonly timeoutMs?: number;
  /** The time limit of connecting (starting the process, the MCP handshake) and of listing the tools. Default 60 000 ms. */
  readonly connectTimeoutMs?: number;
  /** The tools' `cancelOnInterrupt`. Default true: a barge-in cancels the call on the server. */
  readonly cancelOnInterrupt?: boolean;
}

export type McpToolsOptions = (McpStdioServer | McpHttpServer) & McpToolsSettings;

export const DEFAULT_MCP_TIMEOUT_MS = 60_000;

/** Our own timer ends a call; the SDK's request timeout, a little later, is only a backstop. */
const SDK_TIMEOUT_MARGIN_MS = 1_000;

/** A connected MCP client and the tools of its server. `close()` disconnects (idempotent). */
export class McpToolset {
  readonly tools: readonly Tool[];
  readonly #client: Client;
  #closing: Promise<void> | undefined;

  constructor(client: Client, tools: readonly Tool[]) {
    this.#client = client;
    this.tools = tools;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  close(): Promise<void> {
    this.#closing ??= this.#client.close();
    return this.#closing;
  }
}

/** A name the model accepts (OpenAI: 1–64 of `A-Za-z0-9_-`): other characters become `_`. */
function modelName(prefix: string, name: string): string {
  return `${prefix}${name}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

function clientVersion(): string {
  try {
    return (createRequire(import.meta.url)('voxstate/package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

async function openTransport(options: McpStdioServer | McpHttpServer): Promise<Transport> {
  if (options.transport === 'stdio') {
    const { StdioClientTransport, getDefaultEnvironment } = await import('@modelcontextprotocol/sdk/client/stdio.js');
    return new StdioClientTransport({
      command: options.command,
      args: [...(options.args ?? [])],
      ...(options.env === undefined ? {} : { env: { ...getDefaultEnvironment(), ...options.env } }),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
  }
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  return new StreamableHTTPClientTransport(new URL(options.url), options.headers === undefined ? {} : { requestInit: { headers: { ...options.headers } } });
}

function serverLabel(options: McpStdioServer | McpHttpServer): string {
  return options.transport === 'stdio' ? `${options.command} ${(options.args ?? []).join(' ')}`.trim() : String(options.url);
}

interface CallOutcome {
  readonly content?: unknown;
  readonly structuredContent?: unknown;
  readonly isError?: boolean;
  readonly toolResult?: unknown;
}

/** The result the model is told: the text parts joined; other parts named; structured content if there is no text. */
function resultOf(outcome: CallOutcome): unknown {
  const parts = Array.isArray(outcome.content) ? (outcome.content as { type?: unknown; text?: unknown; mimeType?: unknown; resource?: { text?: unknown; uri?: unknown }; uri?: unknown }[]) : [];
  const texts = parts.map((part) => {
    if (part.type === 'text' && typeof part.text === 'string') return part.text;
    if (part.type === 'resource' && typeof part.resource?.text === 'string') return part.resource.text;
    const detail = typeof part.mimeType === 'string' ? ` ${part.mimeType}` : typeof part.uri === 'string' ? ` ${part.uri}` : '';
    return `[${String(part.type)}${detail}]`;
  });
  if (texts.length > 0) return texts.join('\n');
  return outcome.structuredContent ?? outcome.toolResult ?? '';
}

/** Connects to an MCP server and lists its tools. Reject with `provider_unavailable` when the server cannot be reached. */
export async function mcpTools(options: McpToolsOptions): Promise<McpToolset> {
  const prefix = options.prefix ?? '';
  const timeoutMs = options.timeoutMs ?? DEFAULT_MCP_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_MCP_TIMEOUT_MS;
  for (const [field, value] of [['timeoutMs', timeoutMs], ['connectTimeoutMs', connectTimeoutMs]] as const) {
    if (!(Number.isFinite(value) && value > 0)) throw new ConfigError(`mcp.${field}`, `must be a positive number of milliseconds (got ${String(value)})`);
  }
  if (options.transport !== 'stdio' && options.transport !== 'http') throw new ConfigError('mcp.transport', "must be 'stdio' or 'http'");
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const client = new Client({ name: 'voxstate', version: clientVersion() });
  const server = serverLabel(options);
  try {
    await client.connect(await openTransport(options), { timeout: connectTimeoutMs });
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new ProviderError('provider_unavailable', 'other', `MCP server ${server} could not be reached: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    const listed: Awaited<ReturnType<Client['listTools']>>['tools'] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: connectTimeoutMs });
      listed.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const tools = listed.map((spec): Tool => {
      const { $schema: _dialect, ...parameters } = spec.inputSchema as Record<string, unknown>;
      return {
        name: modelName(prefix, spec.name),
        description: spec.description ?? spec.title ?? '',
        parameters,
        timeoutMs,
        ...(options.cancelOnInterrupt === undefined ? {} : { cancelOnInterrupt: options.cancelOnInterrupt }),
        validate(args: unknown): ToolValidation {
          const issues = checkJsonSchema(parameters, args);
          return issues.length === 0 ? { ok: true, value: args } : { ok: false, issues };
        },
        async execute(args: unknown, context: ToolContext): Promise<unknown> {
          const outcome = (await client.callTool({ name: spec.name, arguments: args as Record<string, unknown> }, undefined, {
            signal: context.signal,
            timeout: timeoutMs + SDK_TIMEOUT_MARGIN_MS,
          })) as CallOutcome;
          const result = resultOf(outcome);
          if (outcome.isError === true) throw new ToolError('tool_failed', typeof result === 'string' && result !== '' ? result : `MCP tool '${spec.name}' failed`);
          return result;
        },
      };
    });
    return new McpToolset(client, tools);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new ProviderError('provider_bad_response', 'other', `MCP server ${server} did not list its tools: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
