/**
 * VoiceServer — voxstate in library mode: HTTP (/health and your routes), the WebSocket endpoint,
 * sessions with limits, TTL and token-checked resume, WebRTC or WebSocket audio, hooks and events.
 *
 *   const server = new VoiceServer({ providers: { stt, llm, tts }, systemPrompt: '...' });
 *   await server.start();   // ws://127.0.0.1:8787/ws
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ConfigError, type ErrorCode } from '../errors.js';
import { type Logger, scrubbingLogger, SecretScrubber, silentLogger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import type { Registry } from 'prom-client';
import { DEFAULT_MAX_CLIENT_MESSAGE_BYTES } from '../protocol/codec.js';
import type { IceServer, NegotiatedAudio } from '../protocol/messages.js';
import { limitProviders, type ProviderLimits } from '../providers/limits.js';
import type { ChatMessage, Providers, Tool } from '../providers/types.js';
import { type InboundRateOptions, resolveInboundRate } from '../transport/inbound-rate.js';
import { resolveSessionSettings, type SessionOptions } from '../session/config.js';
import type { TurnDetector } from '../turn/detector.js';
import type { Playbook } from '../playbook/types.js';
import type { MotionLinkOptions } from '../motion/link.js';
import { MemorySessionStore, type SessionStore } from '../session/store.js';
import { DEFAULT_STORE_RETRY, type StoreRetry } from '../session/store-writer.js';
import { SessionPersistence } from './session-persistence.js';
import { type VadConfig, resolveVadConfig } from '../vad/config.js';
import { getSharedVad, type SharedVad } from '../vad/shared-vad.js';
import { ClientConnection, WEBRTC_PCM_RATES } from './connection.js';
import { webRtcTransportFactory, type WebRtcServerOptions } from '../transport/webrtc-pool.js';
import { DEMO_PAGE_HEADERS, demoPageHtml } from './demo-page.js';
import type { ConnectionOptions, NewHost, ServerContext } from './context.js';
import { callHook, type ConnectionInfo, type DisconnectTiming, type HookName, type Hooks } from './hooks.js';
import { DEFAULT_SESSION_LIMITS, SessionRegistry, type SessionLimits } from './registry.js';
import { SessionHost } from './session-host.js';
import { INSPECT_PATH, INSPECT_STREAM_PATH, type InspectOption, type Inspector, inspectorFor } from '../inspect/inspector.js';
import { checkAccess, type TrustProxy, trustedHops } from './http-access.js';
import { checkOrigin, type OriginPolicy, originPolicy } from './origin.js';

const SERVER_STOPPED = 'server stopped';
export type AuthResult = boolean | { readonly principal: string };
export type Authenticate = (token: string | undefined) => AuthResult | Promise<AuthResult>;

export interface VoiceServerOptions {
  /** The providers every session uses; `limits` caps their concurrent calls server-wide (docs/configuration.md). */
  readonly providers: Providers & { readonly limits?: ProviderLimits };
  readonly systemPrompt?: string;
  readonly tools?: readonly Tool[];
  /** Default 8787. 0 picks a free port. Ignored when `server` is given. */
  readonly port?: number;
  /** Default 127.0.0.1 (loopback only; set 0.0.0.0 to listen on every interface). */
  readonly host?: string;
  /** Mount on an existing HTTP server instead of creating one. */
  readonly server?: Server;
  /** WebSocket endpoint path. Default `/ws`. */
  readonly path?: string;
  /** VAD settings (docs/configuration.md), or false for text-only sessions. */
  readonly vad?: Partial<VadConfig> | false;
  /** The shared Silero model; default the process-wide one. */
  readonly sharedVad?: SharedVad;
  /** Turn-taking rules: interruption thresholds, end of turn, preemptive replies, idle, history limits, reply settings. */
  readonly turn?: Omit<SessionOptions, 'sessionTtlMs'>;
  /** How likely the user has finished a turn (docs/turn-detection.md). Default: the lexical detector. */
  readonly turnDetector?: TurnDetector;
  /** The playbook every session runs (docs/playbooks.md), unless the client names one of `playbooks`. */
  readonly playbook?: Playbook;
  /** Named playbooks a client chooses with `session.hello.options.playbook`. */
  readonly playbooks?: Readonly<Record<string, Playbook>>;
  readonly session?: {
    /** How long a dropped session waits for a resume. Default 60 000 ms. */
    readonly ttlMs?: number;
    readonly limits?: Partial<SessionLimits>;
    /**
     * Where sessions are kept for a resume on this or another server: `MemorySessionStore` (the
     * default, this process only) or `RedisSessionStore` (shared by several nodes; docs/deployment.md).
     * The server closes it when it stops.
     */
    readonly store?: SessionStore;
    /**
     * How long the stored record of a live (connected) session stays resumable after its last write,
     * should its node die without suspending it. Default 86 400 000 ms (24 h).
     */
    readonly recordTtlMs?: number;
    /** Backoff of a failed store write, retried until it lands or the session ends. Default 100 ms doubling to 5 000 ms. */
    readonly storeRetry?: Partial<StoreRetry>;
  };
  /** STUN/TURN servers for WebRTC, sent to clients in session.ready. Default [] (host candidates). */
  readonly iceServers?: readonly IceServer[];
  /** Host addresses the WebRTC transport advertises. Default: every interface plus 127.0.0.1. */
  readonly webrtcHostAddresses?: readonly string[];
  /**
   * WebRTC transports run in worker threads (werift, Opus, jitter buffer): `workers` (default one
   * per core, 0 = in the main thread) or a `pool` of your own (docs/configuration.md#webrtc-transport-workers).
   */
  readonly webrtc?: WebRtcServerOptions;
  /**
   * Attach an avatar to every session: a Spatius-compatible Motion Server link whose animation
   * frames and audio are relayed to the client as avatar.* messages (docs/motion.md).
   */
  readonly motion?: MotionLinkOptions;
  readonly hooks?: Hooks;
  readonly logger?: Logger;
  /**
   * Checks `session.hello.token` (and the bearer token of /metrics and /inspect from non-loopback
   * callers). Default: everyone may connect. `tokenAuth(secret)` accepts `createSessionToken` tokens.
   */
  readonly auth?: Authenticate;
  /**
   * Web pages (exact origins, `https://app.example.com`) whose scripts may open the WebSocket, besides
   * the server's own origin and loopback ones (`http(s)://localhost`, `127.0.0.1`, `[::1]`, any port).
   * `'null'` allows sandboxed iframes and file:// pages; `'*'` allows every page (unsafe: any site the
   * user visits can then drive the agent). Clients that send no `Origin` (not browsers) are not affected.
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Count a client by the address in `X-Forwarded-For` (per-address session limits, loopback access to
   * /metrics and /inspect) instead of the socket's: `true` behind one reverse proxy, a number behind
   * that many. Default false. Set it only when every request passes the proxies (docs/configuration.md).
   */
  readonly trustProxy?: TrustProxy;
  /**
   * Strings that must never reach a log line or a client: your provider API keys, the auth secret.
   * Cut out of every field and error the server logs (the Motion Server's `motion.apiKey` is added by itself).
   */
  readonly secrets?: readonly string[];
  /**
   * The live inspector at `GET /inspect` and its stream `/inspect/ws` (docs/inspect.md). Default:
   * on when this server listens on a loopback host of its own, off otherwise. Open to loopback
   * callers; others need a bearer token (or `?token=`) that `auth` accepts. `{ forward }` also hands
   * every (scrubbed) inspection event to your function, e.g. `@statelyai/inspect`'s inspector.
   */
  readonly inspect?: InspectOption;
  /** Largest JSON message accepted from a client, in bytes. Default 65 536. */
  readonly maxMessageBytes?: number;
  /** JSON messages per second per client before it is cut off. Default 50. */
  readonly maxMessagesPerSecond?: number;
  /**
   * Limits on a client's binary audio (websocket audio): `maxFrameMs` (default 500) the longest
   * frame, and `inboundRate` (default 1.5 × real time, 2000 ms burst, refused after 3000 ms over the
   * rate; `false` = off). docs/configuration.md.
   */
  readonly audioInput?: { readonly maxFrameMs?: number; readonly inboundRate?: InboundRateOptions | false };
  /** A connection that sends nothing at all (no message, no audio) this long is closed with `connection_idle`. Default 60 000 ms; 0 = never. */
  readonly connectionIdleTimeoutMs?: number;
  /** Server → client ping interval to detect dead sockets. Default 15 000 ms. */
  readonly heartbeatMs?: number;
  /**
   * Serve the browser demo page (src/server/demo-page.ts) at `GET /`. Default true, except when
   * mounted on your own `server`, whose `/` stays yours unless you pass true.
   */
  readonly demoPage?: boolean;
  /**
   * Prometheus metrics at `GET /metrics` (docs/observability.md): open to loopback callers, others
   * need a bearer token `auth` accepts. Default true, into a registry of this server's own; pass
   * `{ registry }` to register the series in yours (servers given one registry add up), false for none.
   */
  readonly metrics?: boolean | { readonly registry?: Registry };
  /** OpenTelemetry spans may carry transcripts, reply text, tool arguments and results. Default false. */
  readonly traceContent?: boolean;
}

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  /** ws://host:port/path */
  readonly url: string;
}

export interface VoiceServerEvents {
  listening: [address: ServerAddress];
  connection: [info: ConnectionInfo];
  disconnect: [timing: DisconnectTiming];
  error: [error: { sessionId: string | undefined; code: string; message: string; cause?: unknown }];
}

export type RouteHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

function positive(field: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) throw new ConfigError(field, `must be a number >= ${min}, got ${String(value)}`);
  return value;
}

export class VoiceServer extends EventEmitter<VoiceServerEvents> {
  readonly #options: VoiceServerOptions;
  readonly #logger: Logger;
  readonly #registry: SessionRegistry;
  /** The session store and what each session writes to it (session-persistence.ts). */
  readonly #persistence: SessionPersistence;
  readonly #audio = new WeakMap<SessionHost, NegotiatedAudio>();
  readonly #connections = new Set<ClientConnection>();
  readonly #routes = new Map<string, RouteHandler>();
  readonly #connectionOptions: ConnectionOptions;
  readonly #ttlMs: number;
  readonly #path: string;
  readonly #inspector: Inspector | undefined;
  readonly #metrics: Metrics | undefined;
  readonly #origins: OriginPolicy;
  readonly #trustProxyHops: number;
  /** The server's providers with `providers.limits` applied: the one copy every session calls. */
  readonly #providers: Providers;
  #detachMetrics: (() => void) | undefined;
  #http: Server | undefined;
  #ownsHttp = false;
  #wss: WebSocketServer | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #address: ServerAddress | undefined;
  #stopping: Promise<void> | undefined;
  #requestListener: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  #upgradeListener: ((req: IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void) | undefined;

  constructor(options: VoiceServerOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object');
    const { providers } = options;
    if (typeof providers?.stt?.transcribe !== 'function') throw new ConfigError('providers.stt', 'must implement transcribe(audio, options)');
    if (typeof providers?.llm?.stream !== 'function') throw new ConfigError('providers.llm', 'must implement stream(request)');
    if (typeof providers?.tts?.synthesize !== 'function') throw new ConfigError('providers.tts', 'must implement synthesize(text, options)');
    if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535)) {
      throw new ConfigError('port', `must be an integer 0..65535, got ${String(options.port)}`);
    }
    const vadConfig = options.vad === false ? undefined : resolveVadConfig(options.vad ?? {});
    this.#ttlMs = positive('session.ttlMs', options.session?.ttlMs, 60_000);
    // Validate the turn options now, not at the first connection (the end of turn starts at the VAD's pause).
    resolveSessionSettings({ ...options.turn, sessionTtlMs: this.#ttlMs }, vadConfig?.pauseMs);
    this.#options = options;
    this.#origins = originPolicy(options.allowedOrigins);
    this.#trustProxyHops = trustedHops(options.trustProxy);
    if (options.secrets !== undefined && (!Array.isArray(options.secrets) || options.secrets.some((s) => typeof s !== 'string'))) {
      throw new ConfigError('secrets', 'must be an array of strings');
    }
    // Every line this server and its sessions write goes through the scrubber (provider errors can quote keys).
    this.#logger =
      options.logger === undefined ? silentLogger() : scrubbingLogger(options.logger, new SecretScrubber([...(options.secrets ?? []), options.motion?.apiKey]));
    this.#registry = new SessionRegistry({ ...DEFAULT_SESSION_LIMITS, ...options.session?.limits });
    const retry = options.session?.storeRetry;
    this.#persistence = new SessionPersistence({
      store: options.session?.store ?? new MemorySessionStore(),
      registry: this.#registry,
      ...(this.#metrics === undefined ? {} : { metrics: this.#metrics }),
      logger: this.#logger,
      ttlMs: this.#ttlMs,
      recordTtlMs: positive('session.recordTtlMs', options.session?.recordTtlMs, 86_400_000),
      retry: {
        initialDelayMs: positive('session.storeRetry.initialDelayMs', retry?.initialDelayMs, DEFAULT_STORE_RETRY.initialDelayMs),
        maxDelayMs: positive('session.storeRetry.maxDelayMs', retry?.maxDelayMs, DEFAULT_STORE_RETRY.maxDelayMs),
      },
      stoppedReason: SERVER_STOPPED,
    });
    this.#path = options.path ?? '/ws';
    const inboundRate = options.audioInput?.inboundRate;
    const idleMs = options.connectionIdleTimeoutMs ?? 60_000;
    if (!Number.isFinite(idleMs) || idleMs < 0) throw new ConfigError('connectionIdleTimeoutMs', `must be a number >= 0, got ${String(idleMs)}`);
    this.#connectionOptions = {
      maxMessageBytes: positive('maxMessageBytes', options.maxMessageBytes, DEFAULT_MAX_CLIENT_MESSAGE_BYTES, 256),
      maxMessagesPerSecond: positive('maxMessagesPerSecond', options.maxMessagesPerSecond, 50),
      audioInput: {
        maxFrameMs: positive('audioInput.maxFrameMs', options.audioInput?.maxFrameMs, 500, 20),
        inboundRate: inboundRate === false ? undefined : resolveInboundRate(inboundRate ?? {}, 'audioInput.inboundRate'),
      },
      connectionIdleTimeoutMs: idleMs,
      iceServers: options.iceServers ?? [],
      webrtcHostAddresses: options.webrtcHostAddresses,
      webrtc: webRtcTransportFactory(options.webrtc, this.#logger),
      trustProxyHops: this.#trustProxyHops,
    };
    this.route('GET', '/health', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ ok: true, sessions: this.#registry.size, uptimeS: Math.round((Date.now() - this.#startedAt) / 1000) }));
    });

    // ---- Prometheus metrics (docs/observability.md)
    const metricsOption = options.metrics ?? true;
    const metrics = metricsOption === false ? undefined : createMetrics(metricsOption === true ? {} : metricsOption);
    this.#metrics = metrics;
    const { limits, stt, llm, tts } = providers;
    this.#providers = limitProviders({ stt, llm, tts }, limits, { onQueued: (kind, provider, seconds) => metrics?.providerQueued(kind, provider, seconds) });
    if (metrics !== undefined) {
      metrics.knownProviders(providers);
      this.route('GET', '/metrics', async (req, res) => {
        const access = await checkAccess(req, options.auth, this.#trustProxyHops);
        if (!access.ok) {
          res.writeHead(access.status, { 'content-type': 'application/json', ...(access.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
          res.end(JSON.stringify({ error: access.status === 401 ? 'unauthorized' : 'forbidden' }));
          return;
        }
        const body = await metrics.scrape();
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(body);
      });
    }

    // ---- the inspector (src/inspect, docs/inspect.md)
    const inspector = inspectorFor(options, this.#logger);
    this.#inspector = inspector;
    if (inspector !== undefined) {
      this.route('GET', INSPECT_PATH, async (req, res) => {
        // Behind a proxy the inspector's own loopback check would see the proxy: decide here first.
        if (!(await this.#forwardedAccess(req, (status) => res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 401 ? 'unauthorized' : 'forbidden')))) return;
        await inspector.servePage(req, res, options.auth);
      });
    }

    // ---- the browser demo page (demo-page.ts)
    if (options.demoPage ?? options.server === undefined) {
      const page = demoPageHtml({ wsPath: this.#path });
      this.route('GET', '/', (_req, res) => {
        res.writeHead(200, DEMO_PAGE_HEADERS);
        res.end(page);
      });
    }
  }

  /** Live sessions (connected or waiting for a resume). */
  get sessions(): number {
    return this.#registry.size;
  }

  get address(): ServerAddress | undefined {
    return this.#address;
  }

  /** The registry `GET /metrics` serves (undefined with `metrics: false`). */
  get metricsRegistry(): Registry | undefined {
    return this.#metrics?.registry;
  }

  /** Adds an HTTP route (exact path match). */
  route(method: string, path: string, handler: RouteHandler): this {
    this.#routes.set(`${method.toUpperCase()} ${path}`, handler);
    return this;
  }

  async start(): Promise<ServerAddress> {
    if (this.#address !== undefined) return this.#address;
    if (this.#stopping !== undefined) throw new ConfigError('server', 'a stopped VoiceServer cannot be started again');
    this.#startedAt = Date.now();
    const vad = this.#options.vad === false ? undefined : (this.#options.sharedVad ?? getSharedVad());
    await vad?.warmUp();

    const http = this.#options.server ?? createServer();
    this.#ownsHttp = this.#options.server === undefined;
    this.#http = http;
    this.#requestListener = (req, res) => this.#onRequest(req, res);
    http.on('request', this.#requestListener);
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: this.#connectionOptions.maxMessageBytes * 4 });
    this.#wss = wss;
    this.#upgradeListener = (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const inspecting = path === INSPECT_STREAM_PATH && this.#inspector !== undefined;
      if (path !== this.#path && !inspecting) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
        return;
      }
      // A page on another site must not reach the agent (or the inspector) through the user's browser.
      const origin = checkOrigin(req, this.#origins, this.#trustProxyHops > 0);
      if (!origin.ok) {
        this.#logger.info({ origin: origin.origin.slice(0, 200), path, remote: req.socket.remoteAddress }, 'WebSocket upgrade refused: origin not allowed');
        const body = JSON.stringify({ error: 'origin_not_allowed' });
        socket.end(`HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        return;
      }
      if (inspecting) {
        const inspector = this.#inspector as Inspector;
        void this.#forwardedAccess(req, (status) => socket.end(`HTTP/1.1 ${status === 401 ? '401 Unauthorized' : '403 Forbidden'}\r\nConnection: close\r\n\r\n`))
          .then((allowed) => (allowed ? inspector.handleUpgrade(req, socket, head, wss, this.#options.auth) : undefined))
          .catch(() => socket.destroy());
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const connection = new ClientConnection(ws, req, this.#context);
        this.#connections.add(connection);
        ws.once('close', () => this.#connections.delete(connection));
      });
    };
    http.on('upgrade', this.#upgradeListener);
    const heartbeatMs = positive('heartbeatMs', this.#options.heartbeatMs, 15_000, 10);
    this.#heartbeat = setInterval(() => {
      for (const connection of this.#connections) connection.heartbeat();
    }, heartbeatMs);
    this.#heartbeat.unref();

    if (this.#ownsHttp) {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(this.#options.port ?? 8787, this.#options.host ?? '127.0.0.1', () => {
          http.off('error', reject);
          resolve();
        });
      });
    } else if (!http.listening) {
      await new Promise<void>((resolve) => http.once('listening', () => resolve()));
    }
    const info = http.address() as AddressInfo;
    const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
    this.#address = { host: info.address, port: info.port, url: `ws://${host}:${info.port}${this.#path}` };
    this.#detachMetrics = this.#metrics?.attach(vad);
    this.#logger.info({ url: this.#address.url }, 'voxstate listening');
    this.emit('listening', this.#address);
    return this.#address;
  }

  /** Graceful stop: closes every session and connection, frees the port, clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#inspector?.close();
    for (const connection of this.#connections) connection.shutdown();
    for (const host of this.#registry.hosts()) host.close(SERVER_STOPPED);
    const wss = this.#wss;
    if (wss !== undefined) {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
    const http = this.#http;
    if (http !== undefined) {
      if (this.#requestListener) http.off('request', this.#requestListener);
      if (this.#upgradeListener) http.off('upgrade', this.#upgradeListener);
      if (this.#ownsHttp && http.listening) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    }
    // The records of the sessions just stopped (and any write still waiting) get one more try before the store closes.
    await this.#persistence.close();
    await this.#connectionOptions.webrtc.close();
    this.#detachMetrics?.();
    this.#detachMetrics = undefined;
    this.#address = undefined;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    // HEAD is answered by the GET route (Node's http leaves the body out).
    const handler = this.#routes.get(`${method} ${path}`) ?? (method === 'HEAD' ? this.#routes.get(`GET ${path}`) : undefined);
    if (handler === undefined) {
      // Leave requests on a mounted server to its own handlers.
      if (!this.#ownsHttp) return;
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found' }));
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((error: unknown) => {
        this.#logger.error({ err: error, path }, 'route failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal' }));
      });
  }

  /**
   * Behind trusted proxies, whether the forwarded client may read the inspector (`refuse` answers
   * it when not). Without trustProxy the inspector's own check (on the socket's address) decides.
   */
  async #forwardedAccess(req: IncomingMessage, refuse: (status: 401 | 403) => void): Promise<boolean> {
    if (this.#trustProxyHops === 0) return true;
    const access = await checkAccess(req, this.#options.auth, this.#trustProxyHops);
    if (!access.ok) refuse(access.status);
    return access.ok;
  }

  #reportError(sessionId: string | undefined, code: string, message: string, cause?: unknown): void {
    const event = cause === undefined ? { sessionId, code, message } : { sessionId, code, message, cause };
    // An 'error' event without listeners would throw; the log always has it.
    if (this.listenerCount('error') > 0) this.emit('error', event);
  }

  #hookFailed(name: HookName, error: unknown, sessionId: string | undefined): void {
    this.#reportError(sessionId, 'internal', `hook ${name} failed: ${error instanceof Error ? error.message : String(error)}`, error);
  }

  get #context(): ServerContext {
    return {
      logger: this.#logger,
      options: this.#connectionOptions,
      registry: this.#registry,
      authenticate: async (token) => {
        const auth = this.#options.auth;
        if (auth === undefined) return undefined;
        try {
          const result = await auth(token);
          if (result === false) return false;
          return result === true ? undefined : result.principal;
        } catch (error) {
          this.#logger.warn({ err: error }, 'auth hook failed');
          return false;
        }
      },
      createHost: (spec: NewHost) => this.#createHost(spec),
      hasPlaybook: (name) => this.#options.playbooks !== undefined && Object.hasOwn(this.#options.playbooks, name),
      audioOf: (host) => this.#audio.get(host) as NegotiatedAudio,
      restore: (sessionId, resumeToken, admit) => this.#persistence.restore(sessionId, resumeToken, admit, (spec) => this.#createHost(spec)),
      checkHeld: (host) => this.#persistence.checkHeld(host),
      connected: (_connection, info) => {
        this.emit('connection', info);
        this.#callHook('onConnection', info, info.sessionId);
      },
      disconnected: (_connection, timing) => {
        this.emit('disconnect', timing);
        this.#callHook('onDisconnect', timing, timing.sessionId);
      },
      reportError: (sessionId, code: ErrorCode, message) => {
        this.#reportError(sessionId, code, message);
        this.#callHook('onError', { sessionId, code, message }, sessionId);
      },
    };
  }

  #callHook<K extends HookName>(name: K, argument: Parameters<NonNullable<Hooks[K]>>[0], sessionId: string | undefined): void {
    callHook(this.#options.hooks ?? {}, name, argument, (hook, error) => this.#hookFailed(hook, error, sessionId));
  }

  #createHost(spec: NewHost): SessionHost {
    const options = this.#options;
    const vad = options.vad === false ? false : { ...(options.vad === undefined ? {} : { config: options.vad }), shared: options.sharedVad ?? getSharedVad() };
    const playbookName = spec.playbook?.name ?? '';
    const playbook = playbookName === '' ? options.playbook : options.playbooks?.[playbookName];
    const stage: { id: string; data?: Readonly<Record<string, unknown>> } | undefined =
      spec.playbook?.stage === undefined ? undefined : { id: spec.playbook.stage, ...(spec.playbook.data === undefined ? {} : { data: spec.playbook.data }) };
    // Its record: written at turn boundaries, stage changes, suspend and resume (session-persistence.ts).
    const persisted = this.#persistence.forSession(spec, playbook === undefined ? undefined : { name: playbookName, stage });
    // Every token the session issues is cut out of what the inspector shows.
    const { secrets } = persisted;
    // And the configured secrets (provider keys quoted in a provider's error, the Motion Server key).
    for (const secret of [...(options.secrets ?? []), options.motion?.apiKey]) if (secret !== undefined && secret.length >= 8) secrets.push(secret);
    const inspection = this.#inspector?.session(spec.sessionId, { secrets });
    const host = new SessionHost({
      sessionId: spec.sessionId,
      resumeToken: spec.resumeToken,
      ...(spec.heldResumeToken === undefined ? {} : { heldResumeToken: spec.heldResumeToken }),
      providers: this.#providers,
      session: { ...options.turn, sessionTtlMs: this.#ttlMs },
      vad,
      outputSampleRate: spec.audio.transport === 'webrtc' ? WEBRTC_PCM_RATES.output : spec.audio.sampleRate,
      hooks: inspection === undefined ? (options.hooks ?? {}) : inspection.hooks(options.hooks ?? {}),
      ...(inspection?.observer === undefined ? {} : { inspect: inspection.observer }),
      logger: this.#logger,
      ...(this.#metrics === undefined ? {} : { metrics: this.#metrics }),
      ...(options.traceContent === undefined ? {} : { traceContent: options.traceContent }),
      onHookError: (name, error, sessionId) => this.#hookFailed(name, error, sessionId),
      onClosed: (closed) => {
        this.#registry.delete(closed.id, closed);
        persisted.closed(closed);
      },
      ...persisted.hostOptions,
      ...(playbook === undefined ? {} : { playbook }),
      ...(stage === undefined ? {} : { stage }),
      ...(options.systemPrompt === undefined ? {} : { systemPrompt: options.systemPrompt }),
      ...(options.tools === undefined ? {} : { tools: options.tools }),
      ...(options.turnDetector === undefined ? {} : { turnDetector: options.turnDetector }),
      ...(options.motion === undefined ? {} : { motion: options.motion }),
      ...(spec.history === undefined ? {} : { history: spec.history }),
      ...(spec.language === undefined ? {} : { language: spec.language }),
      ...(spec.voice === undefined ? {} : { voice: spec.voice }),
    });
    persisted.attach(host);
    this.#audio.set(host, spec.audio);
    inspection?.attach(host.actor);
    return host;
  }
}
