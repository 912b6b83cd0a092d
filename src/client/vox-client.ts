/**
 * The voxstate client: one WebSocket speaking the wire protocol, with resume after drops,
 * a heartbeat, typed events and PCM16 audio for the websocket transport. Runs in browsers and in
 * Node ≥ 20 (with the `ws` package or an injected WebSocket constructor).
 */
import { InvalidStateError, type VoxError } from '../errors.js';
import { parseServerMessage, serializeClientMessage, DEFAULT_MAX_SERVER_MESSAGE_BYTES } from '../protocol/codec.js';
import { isRetryableClose } from '../protocol/error-codes.js';
import {
  PROTOCOL_VERSION,
  type ClientMessage,
  type ServerMessage,
  type ServerMessageType,
  type SessionReady,
  type SessionResumed,
  type VoiceState,
} from '../protocol/messages.js';
import type { ReconnectOptions, VoxClientEvents, VoxClientOptions, VoxClientStatus } from './client-types.js';
import { closeError, errorFor, fromMessage, isFinalResumeError, toBytes } from './client-errors.js';
import { TypedEmitter } from './emitter.js';
import { SOCKET_OPEN, dropSocket, resolveWebSocket, type WebSocketLike } from './socket.js';

export type {
  AgentAudio,
  ReconnectOptions,
  VoxClientError,
  VoxClientEvents,
  VoxClientOptions,
  VoxClientStatus,
} from './client-types.js';

/** Close codes the client itself uses when it abandons a socket. */
const CLOSE_HEARTBEAT_TIMEOUT = 4000;
const CLOSE_HANDSHAKE_TIMEOUT = 4001;

interface Handshake {
  readonly expect: 'session.ready' | 'session.resumed';
  readonly resolve: (message: SessionReady | SessionResumed) => void;
  readonly reject: (error: VoxError) => void;
}

export class VoxClient {
  readonly #options: VoxClientOptions;
  readonly #reconnect: Required<ReconnectOptions> | undefined;
  readonly #heartbeatMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #random: () => number;
  readonly #events: TypedEmitter<VoxClientEvents>;
  #status: VoxClientStatus = 'idle';
  #socket: WebSocketLike | undefined;
  #handshake: Handshake | undefined;
  #sessionId: string | undefined;
  #resumeToken: string | undefined;
  #ready: SessionReady | undefined;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #rttMs: number | undefined;
  #replyId: string | undefined;
  #replySampleRate: number | undefined;
  #state: string | undefined;
  #voice: VoiceState | undefined;
  #closePromise: Promise<void> | undefined;

  constructor(options: VoxClientOptions) {
    this.#options = options;
    this.#reconnect =
      options.reconnect === false
        ? undefined
        : {
            initialDelayMs: options.reconnect?.initialDelayMs ?? 500,
            maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
            maxAttempts: options.reconnect?.maxAttempts ?? 10,
            jitter: Math.min(1, Math.max(0, options.reconnect?.jitter ?? 0.3)),
          };
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? this.#heartbeatMs;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#random = options.random ?? Math.random;
    this.#events = new TypedEmitter(options.onListenerError);
  }

  get status(): VoxClientStatus {
    return this.#status;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** What the server negotiated in `session.ready` (audio format, ICE servers). */
  get session(): SessionReady | undefined {
    return this.#ready;
  }

  /** The session's turn state as the server last reported it (`listening`, `speaking`, `interrupted.paused`, …). */
  get state(): string | undefined {
    return this.#state;
  }

  /** The user's voice as the server last reported it: `silent`, `speaking` or `paused`. */
  get voice(): VoiceState | undefined {
    return this.#voice;
  }

  /** Round-trip time of the last answered ping, in ms. */
  get rttMs(): number | undefined {
    return this.#rttMs;
  }

  on<K extends keyof VoxClientEvents>(event: K, listener: (payload: VoxClientEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  once<K extends keyof VoxClientEvents>(event: K, listener: (payload: VoxClientEvents[K]) => void): () => void {
    return this.#events.once(event, listener);
  }

  /** Opens the socket, says hello and resolves with `session.ready`. Rejects if the server refuses. */
  async connect(): Promise<SessionReady> {
    if (this.#status !== 'idle') throw new InvalidStateError('session_invalid_state', `connect() while ${this.#status}`);
    this.#status = 'connecting';
    try {
      const ready = (await this.#open('session.ready')) as SessionReady;
      this.#status = 'open';
      this.#events.emit('ready', ready);
      return ready;
    } catch (error) {
      // A refused or failed first connection leaves the client reusable: connect() may be called again.
      if (this.#status === 'connecting') this.#status = 'idle';
      throw error;
    }
  }

  /** Sends any client message. Returns false when there is no open connection (nothing is queued). */
  send(message: ClientMessage): boolean {
    const text = serializeClientMessage(message);
    const socket = this.#socket;
    if (this.#status !== 'open' || socket === undefined || socket.readyState !== SOCKET_OPEN) return false;
    socket.send(text);
    return true;
  }

  /** Sends microphone audio (mono PCM16 at the hello sample rate) for the websocket transport. */
  sendPcm(pcm: Int16Array): boolean {
    if (this.#options.audio.transport !== 'websocket') {
      throw new InvalidStateError('session_invalid_state', 'sendPcm() needs audio.transport "websocket"; use connectWebRtc()');
    }
    const socket = this.#socket;
    if (this.#status !== 'open' || socket === undefined || socket.readyState !== SOCKET_OPEN) return false;
    if (pcm.length === 0) return true;
    socket.send(pcm.slice()); // a copy: the caller may reuse its buffer while the socket still holds this one
    return true;
  }

  sendText(text: string): boolean {
    return this.send({ type: 'user.text', text });
  }

  /** A confirmed barge-in: the server cancels the current reply. */
  interrupt(): boolean {
    return this.send({ type: 'session.interrupt' });
  }

  /** Tells the server how much of `replyId` has actually been played (websocket audio). */
  reportPlayback(replyId: string, playedMs: number): boolean {
    return this.send({ type: 'playback.progress', replyId, playedMs: Math.max(0, playedMs) });
  }

  /** Ends the session and closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    const socket = this.#socket;
    this.#socket = undefined;
    this.#handshake?.reject(new InvalidStateError('session_invalid_state', 'client closed'));
    this.#handshake = undefined;
    this.#finish(1000, 'client closed');
    if (socket === undefined || socket.readyState !== SOCKET_OPEN) {
      if (socket !== undefined) dropSocket(socket, 1000, 'client closed');
      return this.#closePromise ?? Promise.resolve();
    }
    this.#closePromise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        dropSocket(socket, 1000, 'client closed');
        resolve();
      }, 1000);
      socket.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.onmessage = null;
      try {
        socket.send(serializeClientMessage({ type: 'session.close' }));
        socket.close(1000, 'client closed');
      } catch {
        clearTimeout(timer);
        dropSocket(socket, 1000, 'client closed');
        resolve();
      }
    });
    return this.#closePromise;
  }

  // ------------------------------------------------------------------ connection

  /** Opens a socket, sends hello or resume, and resolves with the server's answer. */
  async #open(expect: Handshake['expect']): Promise<SessionReady | SessionResumed> {
    const WebSocketImpl = await resolveWebSocket(this.#options.WebSocket);
    if (this.#status === 'closed') throw new InvalidStateError('session_invalid_state', 'client closed');
    const socket = new WebSocketImpl(this.#options.url);
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;

    return new Promise<SessionReady | SessionResumed>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#abandon(socket);
        settle.reject(new InvalidStateError('internal', `no ${expect} within ${this.#connectTimeoutMs} ms`));
      }, this.#connectTimeoutMs);
      const settle: Handshake = {
        expect,
        resolve: (message) => {
          clearTimeout(timer);
          this.#handshake = undefined;
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          this.#handshake = undefined;
          reject(error);
        },
      };
      this.#handshake = settle;

      socket.onopen = () => {
        socket.send(serializeClientMessage(this.#greeting(expect)));
      };
      socket.onmessage = (event: { data: unknown }) => this.#receive(socket, event.data);
      socket.onerror = () => {
        // Always followed by onclose, which carries the code.
      };
      socket.onclose = (event: { code: number; reason: string }) => {
        if (this.#socket !== socket) return;
        this.#socket = undefined;
        if (this.#handshake === settle) {
          this.#abandon(socket);
          settle.reject(closeError(event.code, event.reason, `connection closed before ${expect}`));
          return;
        }
        this.#onDisconnect(event.code, event.reason);
      };
    });
  }

  #greeting(expect: Handshake['expect']): ClientMessage {
    if (expect === 'session.resumed') {
      return {
        type: 'session.resume',
        sessionId: this.#sessionId ?? '',
        resumeToken: this.#resumeToken ?? '',
        protocol: PROTOCOL_VERSION,
      };
    }
    const { token, audio, options } = this.#options;
    return {
      type: 'session.hello',
      protocol: PROTOCOL_VERSION,
      ...(token === undefined ? {} : { token }),
      audio: { transport: audio.transport, format: 'pcm16', sampleRate: audio.sampleRate, channels: 1 },
      ...(options === undefined ? {} : { options }),
    };
  }

  /** Stops listening to `socket` and drops it, without running the disconnect path. */
  #abandon(socket: WebSocketLike): void {
    if (this.#socket === socket) this.#socket = undefined;
    this.#stopHeartbeat();
    dropSocket(socket, CLOSE_HANDSHAKE_TIMEOUT, 'abandoned');
  }

  #onDisconnect(code: number, reason: string): void {
    this.#stopHeartbeat();
    this.#replyId = undefined;
    if (this.#status === 'closed') return;
    this.#events.emit('disconnected', { code, reason });
    if (this.#reconnect !== undefined && this.#sessionId !== undefined && isRetryableClose(code)) {
      this.#scheduleReconnect(code, reason);
    } else {
      this.#finish(code, reason || 'connection closed');
    }
  }

  #scheduleReconnect(code: number, reason: string): void {
    const policy = this.#reconnect;
    if (policy === undefined || this.#status === 'closed') return;
    this.#attempt++;
    if (this.#attempt > policy.maxAttempts) {
      this.#events.emit('error', {
        code: 'session_expired',
        message: `gave up after ${policy.maxAttempts} reconnection attempts`,
        fatal: true,
        source: 'client',
      });
      this.#finish(code, 'reconnection attempts exhausted');
      return;
    }
    this.#status = 'reconnecting';
    const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (this.#attempt - 1));
    const delayMs = Math.round(base * (1 - policy.jitter * this.#random()));
    this.#events.emit('reconnecting', { attempt: this.#attempt, delayMs, code, reason });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open('session.resumed').then(
        (message) => {
          const resumed = message as SessionResumed;
          this.#attempt = 0;
          this.#events.emit('resumed', resumed);
        },
        (error: VoxError & { closeCode?: number }) => {
          if (this.#status === 'closed') return;
          const closeCode = error.closeCode ?? 1006;
          if (isRetryableClose(closeCode) && !isFinalResumeError(error.code)) this.#scheduleReconnect(closeCode, error.message);
          else this.#finish(closeCode, error.message);
        },
      );
    }, delayMs);
  }

  #finish(code: number, reason: string): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#stopHeartbeat();
    const socket = this.#socket;
    if (socket !== undefined && code !== 1000) {
      this.#socket = undefined;
      dropSocket(socket, 1000, reason);
    }
    this.#events.emit('closed', { code, reason });
  }

  // ------------------------------------------------------------------ heartbeat

  #startHeartbeat(socket: WebSocketLike): void {
    this.#stopHeartbeat();
    if (this.#heartbeatMs <= 0) return;
    this.#heartbeatTimer = setInterval(() => {
      if (this.#socket !== socket || socket.readyState !== SOCKET_OPEN) return;
      socket.send(serializeClientMessage({ type: 'ping', t: Date.now() }));
      if (this.#pongTimer !== undefined) return;
      this.#pongTimer = setTimeout(() => {
        this.#pongTimer = undefined;
        if (this.#socket !== socket) return;
        this.#abandon(socket);
        this.#events.emit('error', {
          code: 'internal',
          message: `no pong within ${this.#heartbeatTimeoutMs} ms`,
          fatal: false,
          source: 'client',
        });
        this.#onDisconnect(CLOSE_HEARTBEAT_TIMEOUT, 'heartbeat timeout');
      }, this.#heartbeatTimeoutMs);
    }, this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
    this.#heartbeatTimer = undefined;
    this.#pongTimer = undefined;
  }

  // ------------------------------------------------------------------ inbound

  #setVoice(voice: VoiceState): void {
    const previous = this.#voice;
    if (voice === previous) return;
    this.#voice = voice;
    this.#events.emit('voice', { voice, previous });
  }

  #receive(socket: WebSocketLike, data: unknown): void {
    if (this.#socket !== socket) return;
    if (typeof data === 'string') {
      const parsed = parseServerMessage(data, this.#options.maxMessageBytes ?? DEFAULT_MAX_SERVER_MESSAGE_BYTES);
      if (!parsed.ok) {
        this.#events.emit('error', { code: parsed.error.code, message: parsed.error.message, fatal: false, source: 'client' });
        return;
      }
      this.#dispatch(socket, parsed.message);
      return;
    }
    const bytes = toBytes(data);
    if (bytes === undefined || bytes.byteLength % 2 !== 0) {
      this.#events.emit('error', {
        code: 'audio_invalid_format',
        message: 'binary frame is not PCM16 (odd length or unknown type)',
        fatal: false,
        source: 'client',
      });
      return;
    }
    const pcm = new Int16Array(bytes.byteLength / 2);
    new Uint8Array(pcm.buffer).set(bytes);
    this.#events.emit('audio', {
      pcm,
      sampleRate: this.#replySampleRate ?? this.#ready?.audio.sampleRate ?? this.#options.audio.sampleRate,
      replyId: this.#replyId,
    });
  }

  #dispatch(socket: WebSocketLike, message: ServerMessage): void {
    const handshake = this.#handshake;
    if (handshake !== undefined) {
      if (message.type === 'error') {
        this.#abandon(socket);
        this.#events.emit('error', { ...fromMessage(message), source: 'server' });
        handshake.reject(errorFor(message.code, message.message, message.fatal));
        return;
      }
      if (message.type !== handshake.expect) return; // nothing else is meaningful before the answer
      if (message.type === 'session.ready') {
        this.#sessionId = message.sessionId;
        this.#resumeToken = message.resumeToken;
        this.#ready = message;
      }
      // The server issues a new token at every resume and the one just used stops working: keep it
      // before anything else can happen (the socket may drop again right away).
      if (message.type === 'session.resumed' && message.resumeToken !== undefined) this.#resumeToken = message.resumeToken;
      this.#status = 'open';
      this.#startHeartbeat(socket);
      handshake.resolve(message);
    }

    this.#events.emit('message', message);
    switch (message.type) {
      case 'error':
        this.#events.emit('error', { ...fromMessage(message), source: 'server' });
        return;
      case 'pong':
        this.#rttMs = Math.max(0, Date.now() - message.t);
        if (this.#pongTimer !== undefined) clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
        break;
      case 'session.state':
        this.#state = message.state;
        this.#events.emit('state', { state: message.state, previous: message.previous, voice: message.voice });
        this.#setVoice(message.voice);
        break;
      case 'session.resumed':
        this.#state = message.state;
        this.#setVoice(message.voice);
        break;
      case 'transcript.partial':
      case 'transcript.final':
        this.#events.emit('transcript', { text: message.text, final: message.type === 'transcript.final' });
        break;
      case 'reply.audio_start':
        this.#replyId = message.replyId;
        this.#replySampleRate = message.sampleRate;
        break;
      case 'reply.audio_end':
        if (this.#replyId === message.replyId) this.#replyId = undefined;
        break;
      default:
        break;
    }
    (this.#events.emit as (event: ServerMessageType, payload: ServerMessage) => void)(message.type, message);
  }
}

