/**
 * The embedded Motion Server (spec §7): the same HTTP and WebSocket contract as a hosted one, on
 * one loopback port. `POST /v1/console/session-tokens` issues tokens for the API key it was started
 * with; `GET /v2/driveningress/websocket?id=<avatarId>` accepts header or query auth, validates
 * configure, and answers each req_id with audio-driven FLAME keyframes at 25 fps of audio time.
 * Fault injection (`setFaults`) refuses upgrades, closes with a code, drops, rejects or delays.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { ConfigError } from '../../errors.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { decodeMessage, encodeMessage } from '../protocol/codec.js';
import {
  MOTION_CLOSE_CODES,
  MOTION_SAMPLE_RATES,
  SERVER_ERROR_CODES,
  type ConfigureSessionMessage,
  type FlameKeyframe,
} from '../protocol/types.js';
import { MotionAnimator } from './animator.js';

export const CONSOLE_PATH = '/v1/console';
export const INGRESS_PATH = '/v2/driveningress';

export interface MotionFaults {
  /** Refuse upgrades with this HTTP status (401 expired, 400 invalid, 404 app/avatar, 402 billing, ...). */
  readonly refuseUpgrade?: { readonly status: number; readonly body?: string; readonly times?: number };
  /** Close each connection with `code` once it has sent `frames` animation messages (0: right after confirm). */
  readonly closeAfterFrames?: { readonly frames: number; readonly code: number; readonly reason?: string; readonly times?: number };
  /** Destroy the TCP connection, without a close frame, after `frames` animation messages. */
  readonly dropAfterFrames?: { readonly frames: number; readonly times?: number };
  /** Answer configure with a SERVER_ERROR of this code instead of a confirm. */
  readonly rejectConfigure?: { readonly code: number; readonly message?: string; readonly times?: number };
  /** Confirm with an empty connection_id (a protocol error clients must catch). */
  readonly emptyConnectionId?: boolean;
  /** Hold the confirm this long. */
  readonly confirmDelayMs?: number;
  /** Hold every animation message this long. */
  readonly frameDelayMs?: number;
  /** The token endpoint answers with this status. */
  readonly tokenStatus?: number;
}

export interface LocalMotionServerOptions {
  /** Default 0 (any free port). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly apiKey: string;
  readonly appId: string;
  /** Avatar ids accepted; omit to accept any. */
  readonly avatars?: readonly string[];
  /** Keyframes per animation message (default 1: one envelope per 40 ms, the lowest latency). */
  readonly keyframesPerMessage?: number;
  /** Close a session that received nothing for this long with 4002. Default 300000 ms. */
  readonly idleTimeoutMs?: number;
  /** How many times the `end=true` drained signal is sent in egress mode (it can repeat). Default 2. */
  readonly egressEndRepeats?: number;
  readonly faults?: MotionFaults;
  readonly logger?: Logger;
}

export interface LocalMotionServerInfo {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** Pass as `consoleEndpointUrl`. */
  readonly consoleEndpointUrl: string;
  /** Pass as `ingressEndpointUrl`. */
  readonly ingressEndpointUrl: string;
}

export interface LocalMotionServerStats {
  tokensIssued: number;
  connections: number;
  refusedUpgrades: number;
  animationMessages: number;
  interrupts: number;
  protocolErrors: number;
}

interface RequestState {
  readonly animator: MotionAnimator;
  ended: boolean;
}

interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly avatarId: string;
  configured: ConfigureSessionMessage | undefined;
  readonly requests: Map<string, RequestState>;
  readonly interrupted: Set<string>;
  sent: number;
  seconds: number;
  idleTimer: NodeJS.Timeout | undefined;
  readonly timers: Set<NodeJS.Timeout>;
  closeAfter: { frames: number; code: number; reason: string } | undefined;
  dropAfter: number | undefined;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function secretEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function errorBody(status: number, code: string, title: string, detail: string): string {
  return JSON.stringify({ errors: [{ status: String(status), code, title, detail }] });
}

function pcmFrom(bytes: Uint8Array): Int16Array {
  const length = bytes.byteLength >> 1;
  if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, length);
  const copy = new Uint8Array(length * 2);
  copy.set(bytes.subarray(0, length * 2));
  return new Int16Array(copy.buffer);
}

export class LocalMotionServer {
  #options: LocalMotionServerOptions | undefined;
  #faults: MotionFaults = {};
  /** Remaining applications of each counted fault (Infinity when `times` is not given). */
  readonly #remaining = new Map<keyof MotionFaults, number>();
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  #info: LocalMotionServerInfo | undefined;
  #log: Logger = silentLogger();
  readonly #tokens = new Map<string, number>();
  readonly #connections = new Set<Connection>();
  readonly #sockets = new Set<Socket>();
  #stopping: Promise<void> | undefined;
  readonly #stats: LocalMotionServerStats = {
    tokensIssued: 0,
    connections: 0,
    refusedUpgrades: 0,
    animationMessages: 0,
    interrupts: 0,
    protocolErrors: 0,
  };

  get info(): LocalMotionServerInfo | undefined {
    return this.#info;
  }
  get stats(): Readonly<LocalMotionServerStats> {
    return { ...this.#stats };
  }
  /** Open WebSocket sessions. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Replaces the fault plan (applies to requests and connections from now on). */
  setFaults(faults: MotionFaults): void {
    this.#faults = { ...faults };
    this.#remaining.clear();
    for (const key of ['refuseUpgrade', 'closeAfterFrames', 'dropAfterFrames', 'rejectConfigure'] as const) {
      const fault = faults[key];
      if (fault !== undefined) this.#remaining.set(key, fault.times ?? Number.POSITIVE_INFINITY);
    }
  }

  /** Consumes one application of a counted fault. */
  #take<K extends 'refuseUpgrade' | 'closeAfterFrames' | 'dropAfterFrames' | 'rejectConfigure'>(key: K): MotionFaults[K] | undefined {
    const fault = this.#faults[key];
    const left = this.#remaining.get(key) ?? 0;
    if (fault === undefined || left <= 0) return undefined;
    this.#remaining.set(key, left - 1);
    return fault;
  }

  async start(options: LocalMotionServerOptions): Promise<LocalMotionServerInfo> {
    if (this.#http !== undefined) throw new ConfigError('start', 'the local Motion Server is already started');
    if (options.apiKey === '') throw new ConfigError('apiKey', 'required');
    if (options.appId === '') throw new ConfigError('appId', 'required');
    this.#options = options;
    this.#log = (options.logger ?? silentLogger()).child({ component: 'local-motion-server' });
    this.setFaults(options.faults ?? {});
    const http = createServer((request, response) => this.#onRequest(request, response));
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
    http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(request, socket, head));
    http.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#http = http;
    this.#wss = wss;
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.port ?? 0, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    const port = (http.address() as AddressInfo).port;
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const url = `http://${hostPart}:${port}`;
    this.#info = {
      host,
      port,
      url,
      consoleEndpointUrl: `${url}${CONSOLE_PATH}`,
      ingressEndpointUrl: `ws://${hostPart}:${port}${INGRESS_PATH}`,
    };
    this.#log.info({ url }, 'local Motion Server listening');
    return this.#info;
  }

  /** Closes every session and the listener. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    const http = this.#http;
    const wss = this.#wss;
    this.#stopping = (async () => {
      for (const connection of this.#connections) {
        this.#cleanup(connection);
        connection.socket.terminate();
      }
      this.#connections.clear();
      for (const socket of this.#sockets) socket.destroy();
      await new Promise<void>((resolve) => (wss === undefined ? resolve() : wss.close(() => resolve())));
      await new Promise<void>((resolve) => (http === undefined ? resolve() : http.close(() => resolve())));
      this.#tokens.clear();
    })();
    return this.#stopping;
  }

  // ---- HTTP: session tokens -------------------------------------------------------------------

  #onRequest(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://local');
    const send = (status: number, body: string): void => {
      response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    };
    if (url.pathname !== `${CONSOLE_PATH}/session-tokens`) {
      send(404, errorBody(404, 'not_found', 'Not Found', `no route ${url.pathname}`));
      return;
    }
    if (request.method !== 'POST') {
      send(405, errorBody(405, 'method_not_allowed', 'Method Not Allowed', 'use POST'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 64 * 1024) chunks.push(chunk);
    });
    request.on('end', () => {
      const forced = this.#faults.tokenStatus;
      if (forced !== undefined) {
        send(forced, errorBody(forced, 'fault_injected', STATUS_TEXT[forced] ?? 'Error', 'fault injection'));
        return;
      }
      const key = request.headers['x-api-key'];
      if (typeof key !== 'string' || !secretEquals(key, this.#options?.apiKey ?? '')) {
        send(401, errorBody(401, 'invalid_api_key', 'Unauthorized', 'the API key is not valid'));
        return;
      }
      let expireAt: unknown;
      try {
        expireAt = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { expireAt?: unknown }).expireAt;
      } catch {
        send(400, errorBody(400, 'invalid_body', 'Bad Request', 'body must be JSON {"expireAt": <unix seconds>}'));
        return;
      }
      const now = Date.now() / 1000;
      if (typeof expireAt !== 'number' || !Number.isFinite(expireAt) || expireAt <= now || expireAt > now + 24 * 3600 + 5) {
        send(400, errorBody(400, 'invalid_expire_at', 'Bad Request', 'expireAt must be in (now, now + 24 h]'));
        return;
      }
      const token = randomBytes(24).toString('base64url');
      this.#tokens.set(token, expireAt);
      this.#stats.tokensIssued += 1;
      send(200, JSON.stringify({ sessionToken: token }));
    });
  }

  // ---- WebSocket upgrade ----------------------------------------------------------------------

  #refuse(socket: Duplex, status: number, body: string): void {
    this.#stats.refusedUpgrades += 1;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const options = this.#options;
    const wss = this.#wss;
    if (options === undefined || wss === undefined || this.#stopping !== undefined) {
      socket.destroy();
      return;
    }
    const url = new URL(request.url ?? '/', 'http://local');
    if (url.pathname !== `${INGRESS_PATH}/websocket`) {
      this.#refuse(socket, 404, errorBody(404, 'not_found', 'Not Found', `no route ${url.pathname}`));
      return;
    }
    const refused = this.#take('refuseUpgrade');
    if (refused !== undefined) {
      this.#refuse(socket, refused.status, refused.body ?? errorBody(refused.status, 'fault_injected', STATUS_TEXT[refused.status] ?? 'Error', 'fault injection'));
      return;
    }
    const header = (name: string): string | undefined => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const appId = header('x-app-id') ?? url.searchParams.get('appId') ?? '';
    const token = header('x-session-key') ?? url.searchParams.get('sessionKey') ?? '';
    const avatarId = url.searchParams.get('id') ?? '';
    const expireAt = this.#tokens.get(token);
    if (expireAt === undefined) {
      this.#refuse(socket, 400, errorBody(400, 'token_invalid', 'Bad Request', 'session token invalid'));
      return;
    }
    if (expireAt <= Date.now() / 1000) {
      this.#tokens.delete(token);
      this.#refuse(socket, 401, errorBody(401, 'token_expired', 'Unauthorized', 'session token expired'));
      return;
    }
    if (!secretEquals(appId, options.appId)) {
      this.#refuse(socket, 404, errorBody(404, 'app_not_found', 'Not Found', 'app unrecognized'));
      return;
    }
    if (avatarId === '' || (options.avatars !== undefined && !options.avatars.includes(avatarId))) {
      this.#refuse(socket, 404, errorBody(404, 'avatar_not_found', 'Not Found', 'avatar not found'));
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(ws, avatarId));
  }

  // ---- Sessions --------------------------------------------------------------------------------

  #onConnection(socket: WebSocket, avatarId: string): void {
    this.#stats.connections += 1;
    const connection: Connection = {
      id: `conn_${randomUUID()}`,
      socket,
      avatarId,
      configured: undefined,
      requests: new Map(),
      interrupted: new Set(),
      sent: 0,
      seconds: 0,
      idleTimer: undefined,
      timers: new Set(),
      closeAfter: undefined,
      dropAfter: undefined,
    };
    this.#connections.add(connection);
    this.#touch(connection);
    socket.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(connection, data, isBinary));
    socket.on('close', () => {
      this.#cleanup(connection);
      this.#connections.delete(connection);
    });
    socket.on('error', (error) => this.#log.debug({ err: error, connectionId: connection.id }, 'session socket error'));
  }

  #cleanup(connection: Connection): void {
    clearTimeout(connection.idleTimer);
    for (const timer of connection.timers) clearTimeout(timer);
    connection.timers.clear();
    connection.requests.clear();
  }

  #touch(connection: Connection): void {
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      connection.socket.close(MOTION_CLOSE_CODES.sessionTimeout, 'idle session timeout');
    }, this.#options?.idleTimeoutMs ?? 300_000);
  }

  #later(connection: Connection, delayMs: number, task: () => void): void {
    if (delayMs <= 0) {
      task();
      return;
    }
    const timer = setTimeout(() => {
      connection.timers.delete(timer);
      task();
    }, delayMs);
    connection.timers.add(timer);
  }

  #send(connection: Connection, bytes: Uint8Array): void {
    if (connection.socket.readyState === WebSocket.OPEN) connection.socket.send(bytes);
  }

  #error(connection: Connection, code: number, message: string, reqId = ''): void {
    this.#send(connection, encodeMessage({ type: 'server.error', connectionId: connection.id, reqId, code, message }));
  }

  /** A broken contract: report it (ServerError 3) and close with the WebSocket protocol code. */
  #protocolError(connection: Connection, closeCode: 1002 | 1003, message: string): void {
    this.#stats.protocolErrors += 1;
    this.#error(connection, SERVER_ERROR_CODES.invalidArgument, message);
    connection.socket.close(closeCode, message.slice(0, 120));
  }

  #onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    this.#touch(connection);
    if (!isBinary) {
      this.#protocolError(connection, 1003, 'text frames are not allowed: send binary protobuf envelopes');
      return;
    }
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    let message;
    try {
      message = decodeMessage(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength));
    } catch {
      this.#protocolError(connection, 1002, 'malformed protobuf envelope');
      return;
    }
    switch (message.type) {
      case 'client.configureSession':
        this.#onConfigure(connection, message);
        return;
      case 'client.audioInput':
        if (connection.configured === undefined) {
          this.#protocolError(connection, 1002, 'CLIENT_AUDIO_INPUT before CLIENT_CONFIGURE_SESSION');
          return;
        }
        this.#onAudio(connection, message.reqId, message.audio, message.end);
        return;
      case 'client.interrupt':
        this.#stats.interrupts += 1;
        connection.interrupted.add(message.reqId);
        connection.requests.delete(message.reqId);
        return;
      default:
        this.#protocolError(connection, 1002, `a client may not send ${message.type}`);
    }
  }

  #configureProblem(message: ConfigureSessionMessage): string | undefined {
    if (!(MOTION_SAMPLE_RATES as readonly number[]).includes(message.sampleRate)) {
      return `sample_rate ${message.sampleRate} is not one of ${MOTION_SAMPLE_RATES.join(', ')}`;
    }
    if (message.audioFormat !== 'pcm_s16le') return 'the local Motion Server accepts PCM_S16LE audio only';
    const egress = message.egress;
    if (egress?.type === 'livekit') {
      if (egress.url === '' || egress.roomName === '') return 'livekit_egress needs url and room_name';
      if (egress.apiToken === '' && (egress.apiKey === '' || egress.apiSecret === '')) {
        return 'livekit_egress needs api_key and api_secret, or api_token';
      }
    }
    if (egress?.type === 'agora' && egress.channelName === '') return 'agora_egress needs channel_name';
    return undefined;
  }

  #onConfigure(connection: Connection, message: ConfigureSessionMessage): void {
    if (connection.configured !== undefined) {
      this.#protocolError(connection, 1002, 'CLIENT_CONFIGURE_SESSION sent twice');
      return;
    }
    const problem = this.#configureProblem(message);
    if (problem !== undefined) {
      this.#error(connection, SERVER_ERROR_CODES.invalidArgument, problem);
      return;
    }
    const rejected = this.#take('rejectConfigure');
    if (rejected !== undefined) {
      this.#error(connection, rejected.code, rejected.message ?? 'fault injection');
      return;
    }
    connection.configured = message;
    const closeAfter = this.#take('closeAfterFrames');
    if (closeAfter !== undefined) connection.closeAfter = { frames: closeAfter.frames, code: closeAfter.code, reason: closeAfter.reason ?? '' };
    const drop = this.#take('dropAfterFrames');
    if (drop !== undefined) connection.dropAfter = drop.frames;
    const connectionId = this.#faults.emptyConnectionId === true ? '' : connection.id;
    this.#later(connection, this.#faults.confirmDelayMs ?? 0, () => {
      this.#send(connection, encodeMessage({ type: 'server.confirmSession', connectionId, capabilities: ['flame'] }));
      this.#checkFaults(connection);
    });
  }

  /** Applies close/drop faults once `sent` reaches their threshold. True when the session ended. */
  #checkFaults(connection: Connection): boolean {
    if (connection.closeAfter !== undefined && connection.sent >= connection.closeAfter.frames) {
      const { code, reason } = connection.closeAfter;
      connection.closeAfter = undefined;
      this.#cleanup(connection);
      connection.socket.close(code, reason);
      return true;
    }
    if (connection.dropAfter !== undefined && connection.sent >= connection.dropAfter) {
      connection.dropAfter = undefined;
      this.#cleanup(connection);
      connection.socket.terminate();
      return true;
    }
    return false;
  }

  #onAudio(connection: Connection, reqId: string, audio: Uint8Array, end: boolean): void {
    const configured = connection.configured;
    if (configured === undefined) return;
    if (reqId === '') {
      this.#error(connection, SERVER_ERROR_CODES.invalidArgument, 'CLIENT_AUDIO_INPUT without req_id');
      return;
    }
    if (connection.interrupted.has(reqId)) return;
    let request = connection.requests.get(reqId);
    if (request === undefined) {
      request = {
        animator: new MotionAnimator({ sampleRate: configured.sampleRate, seed: connection.sent + 1, startTime: connection.seconds }),
        ended: false,
      };
      connection.requests.set(reqId, request);
    }
    if (request.ended) {
      this.#error(connection, SERVER_ERROR_CODES.invalidArgument, `req_id ${reqId} already ended`, reqId);
      return;
    }
    const keyframes = request.animator.push(pcmFrom(audio));
    if (end) {
      keyframes.push(...request.animator.flush());
      request.ended = true;
    }
    connection.seconds += keyframes.length / 25;
    if (configured.egress !== undefined) {
      this.#egressProgress(connection, reqId, end);
      return;
    }
    const perMessage = Math.max(1, this.#options?.keyframesPerMessage ?? 1);
    const batches: FlameKeyframe[][] = [];
    for (let i = 0; i < keyframes.length; i += perMessage) batches.push(keyframes.slice(i, i + perMessage));
    if (end && (batches.length === 0 || (batches.at(-1)?.length ?? 0) === 0)) batches.push([]);
    batches.forEach((batch, index) => {
      const last = end && index === batches.length - 1;
      this.#queueAnimation(connection, reqId, batch, last);
    });
  }

  #egressProgress(connection: Connection, reqId: string, end: boolean): void {
    if (!end) {
      this.#queueAnimation(connection, reqId, [], false);
      return;
    }
    const repeats = Math.max(1, this.#options?.egressEndRepeats ?? 2);
    for (let i = 0; i < repeats; i += 1) this.#queueAnimation(connection, reqId, [], true);
  }

  #queueAnimation(connection: Connection, reqId: string, keyframes: FlameKeyframe[], end: boolean): void {
    const bytes = encodeMessage({
      type: 'server.responseAnimation',
      connectionId: connection.id,
      reqId,
      end,
      avatarId: connection.avatarId,
      keyframes,
    });
    this.#later(connection, this.#faults.frameDelayMs ?? 0, () => {
      if (connection.interrupted.has(reqId) || connection.socket.readyState !== WebSocket.OPEN) return;
      this.#send(connection, bytes);
      connection.sent += 1;
      this.#stats.animationMessages += 1;
      if (end) connection.requests.delete(reqId);
      this.#checkFaults(connection);
    });
  }
}
