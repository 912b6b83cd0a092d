/**
 * The embedded Motion Server (spec §7): the same HTTP and WebSocket contract as a hosted one, on
 * one loopback port. `POST /v1/console/session-tokens` issues tokens for the API key it was started
 * with; `GET /v2/driveningress/websocket?id=<avatarId>` accepts header or query auth, validates
 * configure, and answers each req_id with audio-driven FLAME keyframes at 25 fps of audio time.
 * Fault injection (`setFaults`) refuses upgrades, closes with a code (before or after the
 * confirm), drops, rejects or delays.
 *
 * This file holds the listener and the upgrade check; the token endpoint, the sessions and the
 * fault plan live beside it (token-endpoint.ts, session.ts, faults.ts).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { ConfigError } from '../../errors.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { FaultPlan, type MotionFaults } from './faults.js';
import { CONSOLE_PATH, INGRESS_PATH, REFUSAL, STATUS_TEXT, errorBody, faultRefusalBody, secretEquals } from './http.js';
import { MotionSessions } from './session.js';
import { handleTokenRequest, TokenStore } from './token-endpoint.js';
import type { LocalMotionServerInfo, LocalMotionServerOptions, LocalMotionServerRetained, LocalMotionServerStats } from './types.js';

export { CONSOLE_PATH, INGRESS_PATH } from './http.js';
export type { MotionFaults } from './faults.js';
export type { LocalMotionServerInfo, LocalMotionServerOptions, LocalMotionServerRetained, LocalMotionServerStats } from './types.js';

export class LocalMotionServer {
  #options: LocalMotionServerOptions | undefined;
  readonly #faults = new FaultPlan();
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  #sessions: MotionSessions | undefined;
  #info: LocalMotionServerInfo | undefined;
  #log: Logger = silentLogger();
  #tokens = new TokenStore();
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
    return this.#sessions?.size ?? 0;
  }
  /** Tokens and request ids held in memory right now; each is bounded (`maxTokens`, `maxFinishedRequests`). */
  get retained(): LocalMotionServerRetained {
    return { tokens: this.#tokens.size, openRequests: 0, finishedRequests: 0, ...this.#sessions?.retained() };
  }

  /** Replaces the fault plan (applies to requests and connections from now on). */
  setFaults(faults: MotionFaults): void {
    this.#faults.set(faults);
  }

  async start(options: LocalMotionServerOptions): Promise<LocalMotionServerInfo> {
    if (this.#http !== undefined) throw new ConfigError('start', 'the local Motion Server is already started');
    if (options.apiKey === '') throw new ConfigError('apiKey', 'required');
    if (options.appId === '') throw new ConfigError('appId', 'required');
    this.#options = options;
    this.#log = (options.logger ?? silentLogger()).child({ component: 'local-motion-server' });
    this.setFaults(options.faults ?? {});
    this.#tokens = new TokenStore(options.maxTokens);
    this.#sessions = new MotionSessions({ options, faults: this.#faults, stats: this.#stats, log: this.#log });
    const tokenEndpoint = { apiKey: options.apiKey, faults: this.#faults, tokens: this.#tokens, stats: this.#stats };
    const http = createServer((request, response) => handleTokenRequest(request, response, tokenEndpoint));
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
      this.#sessions?.terminateAll();
      for (const socket of this.#sockets) socket.destroy();
      await new Promise<void>((resolve) => (wss === undefined ? resolve() : wss.close(() => resolve())));
      await new Promise<void>((resolve) => (http === undefined ? resolve() : http.close(() => resolve())));
      this.#tokens.clear();
    })();
    return this.#stopping;
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
    const sessions = this.#sessions;
    if (options === undefined || wss === undefined || sessions === undefined || this.#stopping !== undefined) {
      socket.destroy();
      return;
    }
    const url = new URL(request.url ?? '/', 'http://local');
    if (url.pathname !== `${INGRESS_PATH}/websocket`) {
      this.#refuse(socket, 404, errorBody(404, 'not_found', 'Not Found', `no route ${url.pathname}`));
      return;
    }
    const refused = this.#faults.take('refuseUpgrade');
    if (refused !== undefined) {
      this.#refuse(socket, refused.status, refused.body ?? faultRefusalBody(refused.status));
      return;
    }
    const header = (name: string): string | undefined => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const appId = header('x-app-id') ?? url.searchParams.get('appId') ?? '';
    const token = header('x-session-key') ?? url.searchParams.get('sessionKey') ?? '';
    const avatarId = url.searchParams.get('id') ?? '';
    const expireAt = this.#tokens.expiryOf(token);
    if (expireAt === undefined) {
      this.#refuse(socket, 400, REFUSAL.tokenInvalid);
      return;
    }
    if (expireAt <= Date.now() / 1000) {
      this.#tokens.delete(token);
      this.#refuse(socket, 401, REFUSAL.tokenExpired);
      return;
    }
    if (!secretEquals(appId, options.appId)) {
      this.#refuse(socket, 404, REFUSAL.appNotFound);
      return;
    }
    if (avatarId === '' || (options.avatars !== undefined && !options.avatars.includes(avatarId))) {
      this.#refuse(socket, 404, REFUSAL.avatarNotFound);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => sessions.accept(ws, avatarId));
  }
}
