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
import { type Logger, silentLogger } from '../observability/logger.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import type { Registry } from 'prom-client';
import { DEFAULT_MAX_CLIENT_MESSAGE_BYTES } from '../protocol/codec.js';
import type { IceServer, NegotiatedAudio } from '../protocol/messages.js';
import type { ChatMessage, Providers, Tool } from '../providers/types.js';
import { resolveSessionSettings, type SessionOptions } from '../session/config.js';
import type { TurnDetector } from '../turn/detector.js';
import type { Playbook } from '../playbook/types.js';
import type { MotionLinkOptions } from '../motion/link.js';
import { MemorySessionStore, type SessionStore } from '../session/store.js';
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
import { checkAccess } from './http-access.js';
import { createHash, timingSafeEqual } from 'node:crypto';

const SERVER_STOPPED = 'server stopped';

export type AuthResult = boolean | { readonly principal: string };
export type Authenticate = (token: string | undefined) => AuthResult | Promise<AuthResult>;

export interface VoiceServerOptions {
  readonly providers: Providers;
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
    readonly store?: SessionStore;
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
  /** Checks `session.hello.token`. Default: everyone may connect. */
  readonly auth?: Authenticate;
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
  readonly #store: SessionStore;
  readonly #audio = new WeakMap<SessionHost, NegotiatedAudio>();
  readonly #connections = new Set<ClientConnection>();
  readonly #routes = new Map<string, RouteHandler>();
  readonly #connectionOptions: ConnectionOptions;
  readonly #ttlMs: number;
  readonly #path: string;
  readonly #inspector: Inspector | undefined;
  readonly #metrics: Metrics | undefined;
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
    this.#logger = options.logger ?? silentLogger();
    this.#registry = new SessionRegistry({ ...DEFAULT_SESSION_LIMITS, ...options.session?.limits });
    this.#store = options.session?.store ?? new MemorySessionStore();
    this.#path = options.path ?? '/ws';
    this.#connectionOptions = {
      maxMessageBytes: positive('maxMessageBytes', options.maxMessageBytes, DEFAULT_MAX_CLIENT_MESSAGE_BYTES, 256),
      maxMessagesPerSecond: positive('maxMessagesPerSecond', options.maxMessagesPerSecond, 50),
      iceServers: options.iceServers ?? [],
      webrtcHostAddresses: options.webrtcHostAddresses,
      webrtc: webRtcTransportFactory(options.webrtc, options.logger ?? silentLogger()),
    };
    this.route('GET', '/health', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ ok: true, sessions: this.#registry.size, uptimeS: Math.round((Date.now() - this.#startedAt) / 1000) }));
    });

    // ---- Prometheus metrics (docs/observability.md)
    const metricsOption = options.metrics ?? true;
    const metrics = metricsOption === false ? undefined : createMetrics(metricsOption === true ? {} : metricsOption);
    this.#metrics = metrics;
    if (metrics !== undefined) {
      metrics.knownProviders(providers);
      this.route('GET', '/metrics', async (req, res) => {
        const access = await checkAccess(req, options.auth);
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
    if (inspector !== undefined) this.route('GET', INSPECT_PATH, (req, res) => inspector.servePage(req, res, options.auth));

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
      if (path !== this.#path) {
        if (path === INSPECT_STREAM_PATH && this.#inspector !== undefined) {
          this.#inspector.handleUpgrade(req, socket, head, wss, this.#options.auth).catch(() => socket.destroy());
        } else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
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
    await this.#store.close?.();
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
      restore: async (sessionId, resumeToken) => {
        const record = await this.#store.get(sessionId);
        if (record === undefined) return 'missing';
        const presented = createHash('sha256').update(resumeToken).digest();
        const expected = Buffer.from(record.resumeTokenHash, 'hex');
        if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) return 'refused';
        const audio: NegotiatedAudio =
          record.audio.transport === 'webrtc'
            ? { transport: 'webrtc', format: 'opus', sampleRate: 48_000, channels: 1, frameMs: 20 }
            : { transport: 'websocket', format: 'pcm16', sampleRate: record.audio.sampleRate as 16_000 | 24_000 | 48_000, channels: 1, frameMs: 20 };
        const playbook = record.playbook;
        return this.#createHost({
          sessionId,
          resumeToken,
          audio,
          history: record.history,
          ...(playbook === undefined ? {} : { playbook: { name: playbook.name ?? '', stage: playbook.stage, ...(playbook.data === undefined ? {} : { data: playbook.data }) } }),
        });
      },
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
    const tokenHash = createHash('sha256').update(spec.resumeToken).digest('hex');
    const createdAt = Date.now();
    const playbookName = spec.playbook?.name ?? '';
    const playbook = playbookName === '' ? options.playbook : options.playbooks?.[playbookName];
    let stage: { id: string; data?: Readonly<Record<string, unknown>> } | undefined =
      spec.playbook?.stage === undefined ? undefined : { id: spec.playbook.stage, ...(spec.playbook.data === undefined ? {} : { data: spec.playbook.data }) };
    /** Persists the conversation (and the playbook stage); it stays resumable from the store for `lifetimeMs`. */
    let lastHistory: readonly ChatMessage[] = spec.history ?? [];
    const writeRecord = (history: readonly ChatMessage[], lifetimeMs: number): void => {
      const now = Date.now();
      lastHistory = history;
      void this.#store
        .set({
          sessionId: spec.sessionId,
          resumeTokenHash: tokenHash,
          history,
          ...(playbook === undefined || stage === undefined
            ? {}
            : { playbook: { ...(playbookName === '' ? {} : { name: playbookName }), stage: stage.id, ...(stage.data === undefined ? {} : { data: stage.data }) } }),
          audio: { transport: spec.audio.transport, sampleRate: spec.audio.sampleRate },
          createdAt,
          updatedAt: now,
          expiresAt: now + lifetimeMs,
        })
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'session store write failed'));
    };
    const inspection = this.#inspector?.session(spec.sessionId, { secrets: [spec.resumeToken] });
    const host = new SessionHost({
      sessionId: spec.sessionId,
      resumeToken: spec.resumeToken,
      providers: options.providers,
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
        this.#registry.delete(closed.id);
        if (closed.closeReason === 'expired') this.#registry.markExpired(closed.id);
        // A server that stops keeps its sessions' records: another server sharing the store (or this
        // one, restarted) can resume them.
        if (closed.closeReason === SERVER_STOPPED) {
          writeRecord(closed.history, this.#ttlMs);
          return;
        }
        void this.#store.delete(closed.id).catch((error: unknown) => this.#logger.warn({ err: error }, 'session store delete failed'));
      },
      onHistory: (_changed, history) => writeRecord(history, 24 * 3_600_000),
      onStage: (next) => {
        stage = next;
        writeRecord(lastHistory, 24 * 3_600_000);
      },
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
    this.#audio.set(host, spec.audio);
    inspection?.attach(host.actor);
    return host;
  }
}
