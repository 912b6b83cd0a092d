/**
 * A loopback server speaking OpenAI's Realtime WebSocket protocol for transcription sessions, the
 * way the service does: `session.created` on connect, `session.updated` after `session.update`,
 * `input_audio_buffer.committed` and the conversation item events on commit, then the segment's
 * transcription as `…transcription.delta` events and a `…transcription.completed`. Bad input gets
 * an `error` event, a bad key a 401 at the handshake.
 *
 * What each committed segment "says" comes from `script`, a queue shared by all connections. Every
 * connection records what it received (event types, decoded audio sample counts, commits) and when
 * it closed. Server turn detection is not emulated: the client is expected to turn it off, and
 * tests can check that it did (`connection.session`).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** What one committed segment is transcribed as. */
export type SegmentScript =
  | string
  | {
      /** The transcript; sent as one delta per word (with its leading space). */
      readonly text?: string;
      /** Before the first delta. Default: the server's `startDelayMs`. */
      readonly startDelayMs?: number;
      /** Between deltas. Default: the server's `deltaDelayMs`. */
      readonly deltaDelayMs?: number;
      /** Instead of transcribing, send this `error` event (the session stays open, as OpenAI's does). */
      readonly error?: { type: string; code?: string | null; message: string };
      /** Instead of transcribing, send `…transcription.failed` with this error. */
      readonly failure?: { type?: string; code?: string; message: string };
    };

export interface RealtimeServerOptions {
  /** The key clients must present (Authorization: Bearer, or the browser subprotocol). Default: any non-empty key. */
  readonly apiKey?: string;
  /** Default delay before a segment's first delta. Default 20 ms. */
  readonly startDelayMs?: number;
  /** Default delay between deltas. Default 15 ms. */
  readonly deltaDelayMs?: number;
}

export interface Commit {
  readonly itemId: string;
  /** 24 kHz samples in the committed segment. */
  readonly samples: number;
  /** Samples appended on this connection before the commit (the segment's end, in audio time). */
  readonly atSample: number;
  /** performance.now() when the commit arrived. */
  readonly at: number;
}

export interface ClientEventRecord {
  readonly type: string;
  readonly at: number;
}

/** The rate OpenAI's `audio/pcm` input format has. */
const RATE = 24_000;
const MIN_COMMIT_SAMPLES = RATE / 10;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let ids = 0;
const id = (prefix: string): string => `${prefix}_${(++ids).toString(36).padStart(6, '0')}`;

export class RealtimeConnection {
  /** The request path and query the client connected with. */
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  /** Every client event, in arrival order (audio payloads left out). */
  readonly events: ClientEventRecord[] = [];
  /** Every server event sent, in order: its type and the item it is about. */
  readonly sent: { type: string; itemId?: string; at: number }[] = [];
  /** Every `session.update`'s `session` object, as sent. */
  readonly updates: Record<string, unknown>[] = [];
  readonly commits: Commit[] = [];
  /** The effective session configuration. */
  session: { type: string; audio: { input: Record<string, unknown> } } & Record<string, unknown>;
  /** 24 kHz samples decoded from every `input_audio_buffer.append`. */
  appendedSamples = 0;
  /** Resolves when the socket closed, with the close code the server saw. */
  readonly closed: Promise<{ code: number; reason: string; at: number }>;
  readonly #socket: WebSocket;
  readonly #server: OpenAiRealtimeServer;
  #buffered = 0;
  #lastItem: string | null = null;

  constructor(socket: WebSocket, request: IncomingMessage, server: OpenAiRealtimeServer) {
    this.#socket = socket;
    this.#server = server;
    this.url = new URL(request.url ?? '/', 'ws://loopback');
    this.headers = request.headers;
    this.session = {
      type: 'transcription',
      object: 'realtime.transcription_session',
      id: id('sess'),
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: RATE },
          transcription: null,
          noise_reduction: null,
          turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
        },
      },
      include: null,
    };
    this.closed = new Promise((resolve) =>
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() })),
    );
    socket.on('message', (data, isBinary) => this.#onMessage(isBinary ? null : data.toString()));
  }

  get eventTypes(): string[] {
    return this.events.map((e) => e.type);
  }

  /** Sends a server event (an `event_id` is added). Tests use it to inject events. */
  send(event: Record<string, unknown>): void {
    if (this.#socket.readyState !== this.#socket.OPEN) return;
    const itemId = typeof event['item_id'] === 'string' ? event['item_id'] : undefined;
    this.sent.push({ type: String(event['type']), ...(itemId === undefined ? {} : { itemId }), at: performance.now() });
    this.#socket.send(JSON.stringify({ event_id: id('event'), ...event }));
  }

  /** Sends an `error` event. */
  error(error: { type: string; code?: string | null; message: string; param?: string | null }, eventId: string | null = null): void {
    this.send({ type: 'error', error: { code: null, param: null, event_id: eventId, ...error } });
  }

  close(code = 1000, reason = ''): void {
    this.#socket.close(code, reason);
  }

  /** The `invalid_request_error` OpenAI answers a bad client event with. */
  #invalid(code: string, message: string, eventId: string | null = null, param: string | null = null): void {
    this.error({ type: 'invalid_request_error', code, param, message }, eventId);
  }

  /** Starts the session, or refuses it as OpenAI does when the URL does not ask for a transcription session. */
  open(): void {
    if (this.url.searchParams.get('intent') !== 'transcription') {
      this.#invalid('invalid_request_error', 'This server only serves transcription sessions (?intent=transcription).');
      this.close(1008, 'unsupported session');
      return;
    }
    if (this.url.searchParams.has('model')) {
      this.#invalid('invalid_model', 'You must not provide a model parameter for transcription sessions.');
      this.close(1008, 'invalid model');
      return;
    }
    this.send({ type: 'session.created', session: this.session });
  }

  #onMessage(text: string | null): void {
    let event: Record<string, unknown>;
    try {
      if (text === null) throw new SyntaxError('binary frame');
      event = JSON.parse(text) as Record<string, unknown>;
      if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new SyntaxError('not an object');
    } catch {
      this.#invalid('invalid_json', 'The server could not parse the JSON of the event.');
      return;
    }
    const type = typeof event['type'] === 'string' ? event['type'] : '';
    const eventId = typeof event['event_id'] === 'string' ? event['event_id'] : null;
    this.events.push({ type, at: performance.now() });
    switch (type) {
      case 'session.update':
        this.#update(event['session'], eventId);
        return;
      case 'input_audio_buffer.append':
        this.#append(event['audio'], eventId);
        return;
      case 'input_audio_buffer.commit':
        this.#commit(eventId);
        return;
      case 'input_audio_buffer.clear':
        this.#buffered = 0;
        this.send({ type: 'input_audio_buffer.cleared' });
        return;
      default:
        this.#invalid(
          'invalid_value',
          `Invalid value: '${type}'. Supported values are: 'session.update', 'input_audio_buffer.append', ` +
            `'input_audio_buffer.commit' and 'input_audio_buffer.clear'.`,
          eventId,
          'type',
        );
    }
  }

  #update(session: unknown, eventId: string | null): void {
    const s = session as { type?: unknown; audio?: { input?: Record<string, unknown> } } | undefined;
    if (!s || s.type !== 'transcription') {
      const message = 'Passing a realtime session update event to a transcription session is not allowed.';
      this.#invalid('invalid_value', message, eventId, 'session.type');
      return;
    }
    const input = s.audio?.input ?? {};
    const format = input['format'] as { type?: string; rate?: number } | undefined;
    if (format && format.type === 'audio/pcm' && format.rate !== undefined && format.rate !== RATE) {
      const param = 'session.audio.input.format.rate';
      this.#invalid('invalid_value', `Invalid '${param}': only ${RATE} is supported.`, eventId, param);
      return;
    }
    const transcription = input['transcription'] as { model?: unknown } | null | undefined;
    if (transcription && typeof transcription.model !== 'string') {
      const param = 'session.audio.input.transcription.model';
      this.#invalid('missing_required_parameter', `Missing required parameter: '${param}'.`, eventId, param);
      return;
    }
    this.updates.push(s as Record<string, unknown>);
    this.session = { ...this.session, audio: { input: { ...this.session.audio.input, ...input } } };
    this.send({ type: 'session.updated', session: this.session });
  }

  #append(audio: unknown, eventId: string | null): void {
    if (typeof audio !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(audio)) {
      this.#invalid('invalid_value', "Invalid 'audio'. Expected base64-encoded audio bytes.", eventId, 'audio');
      return;
    }
    const bytes = Buffer.from(audio, 'base64').length;
    if (bytes % 2 !== 0) {
      this.#invalid('invalid_value', "Invalid 'audio': PCM16 needs an even number of bytes.", eventId, 'audio');
      return;
    }
    this.appendedSamples += bytes / 2;
    this.#buffered += bytes / 2;
  }

  #commit(eventId: string | null): void {
    if (this.#buffered < MIN_COMMIT_SAMPLES) {
      const ms = ((this.#buffered / RATE) * 1000).toFixed(2);
      const message =
        'Error committing input audio buffer: buffer too small. ' +
        `Expected at least 100ms of audio, but buffer only has ${ms}ms of audio.`;
      this.#invalid('input_audio_buffer_commit_empty', message, eventId);
      return;
    }
    const itemId = id('item');
    const previous = this.#lastItem;
    this.#lastItem = itemId;
    const samples = this.#buffered;
    this.#buffered = 0;
    this.commits.push({ itemId, samples, atSample: this.appendedSamples, at: performance.now() });
    this.send({ type: 'input_audio_buffer.committed', item_id: itemId, previous_item_id: previous });
    const content = [{ type: 'input_audio', transcript: null }];
    const item = { id: itemId, object: 'realtime.item', type: 'message', role: 'user', status: 'completed', content };
    this.send({ type: 'conversation.item.added', previous_item_id: previous, item });
    this.send({ type: 'conversation.item.done', previous_item_id: previous, item });
    void this.#transcribe(itemId, samples, this.#server.script.shift() ?? '');
  }

  /** Transcribes one segment; segments run side by side, as OpenAI's do. */
  async #transcribe(itemId: string, samples: number, script: SegmentScript): Promise<void> {
    const entry = typeof script === 'string' ? { text: script } : script;
    await sleep(entry.startDelayMs ?? this.#server.startDelayMs);
    if (entry.error) {
      this.error(entry.error);
      return;
    }
    if (entry.failure) {
      this.send({ type: 'conversation.item.input_audio_transcription.failed', item_id: itemId, content_index: 0, error: entry.failure });
      return;
    }
    const text = entry.text ?? '';
    for (const delta of text.match(/\s*\S+/g) ?? []) {
      this.send({ type: 'conversation.item.input_audio_transcription.delta', item_id: itemId, content_index: 0, delta });
      await sleep(entry.deltaDelayMs ?? this.#server.deltaDelayMs);
    }
    this.send({
      type: 'conversation.item.input_audio_transcription.completed',
      item_id: itemId,
      content_index: 0,
      transcript: text,
      usage: { type: 'duration', seconds: Math.ceil(samples / RATE) },
    });
  }
}

export class OpenAiRealtimeServer {
  /** What the next committed segments say, shared by all connections (an empty queue transcribes as ''). */
  readonly script: SegmentScript[] = [];
  readonly connections: RealtimeConnection[] = [];
  /** Handshakes refused, with the status sent. */
  readonly refused: { status: number; url: string }[] = [];
  readonly startDelayMs: number;
  readonly deltaDelayMs: number;
  /** `ws://127.0.0.1:<port>/v1`, the `baseURL` for a client. */
  url = '';
  readonly #apiKey: string | undefined;
  readonly #http: Server;
  readonly #wss = new WebSocketServer({ noServer: true });
  readonly #sockets = new Set<Socket>();
  #waiters: ((connection: RealtimeConnection) => void)[] = [];

  constructor(options: RealtimeServerOptions = {}) {
    this.#apiKey = options.apiKey;
    this.startDelayMs = options.startDelayMs ?? 20;
    this.deltaDelayMs = options.deltaDelayMs ?? 15;
    this.#http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Upgrade to a WebSocket.', type: 'invalid_request_error', code: null, param: null } }));
    });
    this.#http.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#http.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(request, socket, head));
  }

  async start(): Promise<this> {
    this.#http.listen(0, '127.0.0.1');
    await once(this.#http, 'listening');
    this.url = `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/v1`;
    return this;
  }

  /** Resolves with the next connection the server accepts. */
  nextConnection(): Promise<RealtimeConnection> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #upgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'ws://loopback');
    if (url.pathname !== '/v1/realtime') return this.#refuse(socket, request, 404, `Invalid URL (GET ${url.pathname})`);
    const key = presentedKey(request);
    if (!key) return this.#refuse(socket, request, 401, 'Missing bearer authentication in header.');
    if (this.#apiKey !== undefined && key !== this.#apiKey) {
      // OpenAI shows the start and end of a wrong key; the client must not pass even that on.
      const shown = `${key.slice(0, 8)}****${key.slice(-4)}`;
      return this.#refuse(socket, request, 401, `Incorrect API key provided: ${shown}.`, 'invalid_api_key');
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new RealtimeConnection(ws, request, this);
      this.connections.push(connection);
      connection.open();
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const resolve of waiters) resolve(connection);
    });
  }

  /** Answers the upgrade request with an HTTP error and OpenAI's JSON error body. */
  #refuse(socket: Socket, request: IncomingMessage, status: 401 | 404, message: string, code: string | null = null): void {
    this.refused.push({ status, url: request.url ?? '' });
    const body = JSON.stringify({ error: { message, type: 'invalid_request_error', code, param: null } });
    const head = [
      `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Not Found'}`,
      'content-type: application/json',
      `content-length: ${Buffer.byteLength(body)}`,
      'connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
}

/** The key in `Authorization: Bearer …` (servers) or the `openai-insecure-api-key.…` subprotocol (browsers). */
function presentedKey(request: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (bearer) return bearer;
  const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.find((p) => p.startsWith('openai-insecure-api-key.'))?.slice('openai-insecure-api-key.'.length) || undefined;
}
