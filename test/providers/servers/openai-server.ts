/**
 * A loopback server speaking the OpenAI REST wire protocol for the three endpoints voxstate uses:
 * `/v1/chat/completions` (SSE), `/v1/audio/transcriptions` (multipart) and `/v1/audio/speech`
 * (streamed PCM). Tests queue a handler per expected request; every request is recorded, and a
 * response the client abandoned mid-way is reported through `clientClosed`.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  /** Parsed JSON body, or the multipart fields (the file as `{ name, type, bytes }`). */
  readonly body: Record<string, unknown>;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface UploadedFile {
  readonly name: string;
  readonly type: string;
  readonly bytes: Uint8Array;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class OpenAiServer {
  readonly requests: RecordedRequest[] = [];
  /** Resolves each time a response is closed by the client before the server ended it. */
  clientClosed: Promise<string>;
  #resolveClosed: (path: string) => void = () => {};
  readonly #queues = new Map<string, Handler[]>();
  readonly #server: Server;
  readonly #sockets = new Set<import('node:net').Socket>();
  url = '';

  constructor() {
    this.clientClosed = this.#nextClosed();
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  #nextClosed(): Promise<string> {
    return new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  async start(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    const { port } = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/v1`;
    return this;
  }

  /** Queue handlers for the next requests to `path` (e.g. '/v1/chat/completions'). */
  on(path: string, ...handlers: Handler[]): this {
    const queue = this.#queues.get(path) ?? [];
    queue.push(...handlers);
    this.#queues.set(path, queue);
    return this;
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const path = (req.url ?? '').split('?')[0] ?? '';
    const type = req.headers['content-type'] ?? '';
    let body: Record<string, unknown> = {};
    if (type.includes('application/json')) body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    else if (type.includes('multipart/form-data')) body = await parseMultipart(raw, type);
    const recorded: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, body };
    this.requests.push(recorded);
    res.on('close', () => {
      if (!res.writableFinished) {
        const resolve = this.#resolveClosed;
        this.clientClosed = this.#nextClosed();
        resolve(path);
      }
    });
    const handler = this.#queues.get(path)?.shift();
    if (!handler) {
      json(404, { error: { message: `no handler queued for ${path}`, type: 'invalid_request_error' } })(recorded, res);
      return;
    }
    try {
      await handler(recorded, res);
    } catch {
      res.destroy();
    }
  }
}

async function parseMultipart(raw: Buffer, contentType: string): Promise<Record<string, unknown>> {
  const form = await new Request('http://loopback/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
  const fields: Record<string, unknown> = {};
  for (const [key, value] of form.entries()) {
    if (typeof value === 'string') fields[key] = value;
    else fields[key] = { name: value.name, type: value.type, bytes: new Uint8Array(await value.arrayBuffer()) } satisfies UploadedFile;
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Handlers

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(value));
  };
}

export function text(status: number, body: string, contentType = 'text/plain'): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': contentType });
    res.end(body);
  };
}

export interface StreamOptions {
  /** Pause between writes. */
  readonly delayMs?: number;
  /** Keep the response open after the last write (to test aborts). */
  readonly hold?: boolean;
}

/** Server-sent events: each item is JSON-encoded unless it is a string (sent raw as `data:`). */
export function sse(events: readonly unknown[], options: StreamOptions & { done?: boolean } = {}): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    for (const event of events) {
      if (res.destroyed) return;
      res.write(`data: ${typeof event === 'string' ? event : JSON.stringify(event)}\n\n`);
      if (options.delayMs) await sleep(options.delayMs);
    }
    if (options.hold) return;
    if (options.done !== false) res.write('data: [DONE]\n\n');
    res.end();
  };
}

/** Raw audio bytes written in `chunkBytes` pieces (odd sizes exercise sample reassembly). */
export function audio(bytes: Uint8Array, options: StreamOptions & { chunkBytes?: number; contentType?: string } = {}): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': options.contentType ?? 'application/octet-stream' });
    const step = options.chunkBytes ?? 4096;
    for (let i = 0; i < bytes.length; i += step) {
      if (res.destroyed) return;
      res.write(bytes.subarray(i, i + step));
      if (options.delayMs) await sleep(options.delayMs);
    }
    if (!options.hold) res.end();
  };
}

export function errorBody(message: string, type = 'server_error', code: string | null = null): unknown {
  return { error: { message, type, param: null, code } };
}

// ---------------------------------------------------------------------------------------------
// Chat completion chunks

let seq = 0;
export function chunk(delta: Record<string, unknown>, finishReason: string | null = null): Record<string, unknown> {
  return {
    id: `chatcmpl-${++seq}`,
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'loopback',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

export function usageChunk(prompt: number, completion: number): Record<string, unknown> {
  return {
    id: `chatcmpl-${++seq}`,
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'loopback',
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}

/** A text reply split into the given pieces, then `stop` and a usage chunk. */
export function textStream(pieces: readonly string[], usage: [number, number] = [10, pieces.length]): unknown[] {
  return [
    chunk({ role: 'assistant', content: '' }),
    ...pieces.map((content) => chunk({ content })),
    chunk({}, 'stop'),
    usageChunk(usage[0], usage[1]),
  ];
}
