/**
 * The Server SDK role: one single-use connection to a Motion Server (spec §2–§5).
 *
 * connect() = token exchange + WebSocket upgrade + configure/confirm, settled by exactly one of
 * confirm, server error, close, refusal or timeout. After that: sendAudio() under one req_id per
 * reply, interrupt(), close(). Animation envelopes come out as the bytes received, plus the few
 * header fields a relay needs; envelopes of a req_id this client no longer streams are dropped and
 * counted. Every close is reported once, as a typed MotionError carrying the retry decision.
 */
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { ClientRequest } from 'node:http';
import { ConfigError } from '../../errors.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { closeError, MotionError, serverErrorRetryable, upgradeError } from '../errors.js';
import { decodeMessage, encodeMessage, MESSAGE_TYPE, peekEnvelope } from '../protocol/codec.js';
import { MOTION_SAMPLE_RATES, SERVER_ERROR_CODES, type EgressConfig, type MotionSampleRate } from '../protocol/types.js';
import { resolveEndpoints, type EndpointOptions } from './endpoints.js';
import { newReqId } from './req-id.js';
import { fetchSessionToken } from './token.js';

export interface MotionClientOptions extends EndpointOptions {
  readonly apiKey: string;
  readonly appId: string;
  readonly avatarId: string;
  /** Auth by query parameters `appId`/`sessionKey` instead of the `X-App-ID`/`X-Session-Key` headers. */
  readonly useQueryAuth?: boolean;
  /** Rate of the PCM passed to sendAudio. Default 16000. */
  readonly sampleRate?: MotionSampleRate;
  readonly bitrate?: number;
  /** Have the Motion Server publish to a LiveKit room or Agora channel itself. */
  readonly egress?: EgressConfig;
  readonly extraParams?: Readonly<Record<string, string>>;
  /** Upgrade + configure/confirm must finish within this. Default 10000 ms. */
  readonly handshakeTimeoutMs?: number;
  /** Session token lifetime. Default 3600 s (max 86400). */
  readonly tokenTtlSeconds?: number;
  /** Largest envelope accepted from the server. Default 4 MiB. */
  readonly maxPayload?: number;
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
}

export interface MotionConfirm {
  readonly connectionId: string;
  readonly capabilities: readonly string[];
}

/** One animation envelope as received. `bytes` are relayed unchanged (unknown fields included). */
export interface MotionAnimation {
  readonly bytes: Uint8Array;
  readonly reqId: string;
  readonly end: boolean;
  readonly connectionId: string;
  readonly keyframeCount: number;
  /** performance.now() when the envelope was read from the socket. */
  readonly receivedAt: number;
}

export interface MotionClientEvents {
  animation: MotionAnimation;
  /** A non-fatal problem: a ServerError for a request, a malformed envelope. */
  error: MotionError;
  /** No request is outstanding any more (every req_id ended, or was interrupted). */
  idle: undefined;
  /** The confirmed connection ended: a MotionError, or undefined after close(). Fires once. */
  close: MotionError | undefined;
}

export interface MotionClientStats {
  envelopes: number;
  droppedEnvelopes: number;
  malformedEnvelopes: number;
  audioBytesSent: number;
}

type Listener<T> = (value: T) => void;
type State = 'new' | 'connecting' | 'open' | 'closed';

const LITTLE_ENDIAN = endianness() === 'LE';

function pcmBytes(pcm: Int16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i += 1) view.setInt16(i * 2, pcm[i] ?? 0, true);
  return out;
}

function rawBytes(data: RawData): Uint8Array {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

export class MotionClient {
  readonly #options: MotionClientOptions;
  readonly #log: Logger;
  readonly #listeners: { [K in keyof MotionClientEvents]: Set<Listener<MotionClientEvents[K]>> } = {
    animation: new Set(),
    error: new Set(),
    idle: new Set(),
    close: new Set(),
  };
  #state: State = 'new';
  #socket: WebSocket | undefined;
  #connectionId = '';
  /** req_id the next sendAudio continues; undefined after `end` or an interrupt. */
  #currentReqId: string | undefined;
  /** req_ids whose animation is still expected (sent, not ended by the server, not interrupted). */
  readonly #active = new Set<string>();
  #abortConnect: ((error: MotionError) => void) | undefined;
  readonly #stats: MotionClientStats = { envelopes: 0, droppedEnvelopes: 0, malformedEnvelopes: 0, audioBytesSent: 0 };

  constructor(options: MotionClientOptions) {
    if (options.apiKey === '') throw new ConfigError('apiKey', 'required');
    if (options.appId === '') throw new ConfigError('appId', 'required');
    if (options.avatarId === '') throw new ConfigError('avatarId', 'required');
    const rate = options.sampleRate ?? 16000;
    if (!(MOTION_SAMPLE_RATES as readonly number[]).includes(rate)) {
      throw new ConfigError('sampleRate', `must be one of ${MOTION_SAMPLE_RATES.join(', ')}`);
    }
    resolveEndpoints(options);
    this.#options = options;
    this.#log = (options.logger ?? silentLogger()).child({ component: 'motion-client', avatarId: options.avatarId });
  }

  get state(): State {
    return this.#state;
  }
  get connectionId(): string {
    return this.#connectionId;
  }
  get currentReqId(): string | undefined {
    return this.#currentReqId;
  }
  /** True while a reply is being sent or its animation is still expected. */
  get busy(): boolean {
    return this.#currentReqId !== undefined || this.#active.size > 0;
  }
  get sampleRate(): MotionSampleRate {
    return this.#options.sampleRate ?? 16000;
  }
  get egress(): boolean {
    return this.#options.egress !== undefined;
  }
  get stats(): Readonly<MotionClientStats> {
    return { ...this.#stats };
  }

  on<K extends keyof MotionClientEvents>(event: K, listener: Listener<MotionClientEvents[K]>): () => void {
    const set = this.#listeners[event] as Set<Listener<MotionClientEvents[K]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  #emit<K extends keyof MotionClientEvents>(event: K, value: MotionClientEvents[K]): void {
    for (const listener of this.#listeners[event] as Set<Listener<MotionClientEvents[K]>>) {
      try {
        listener(value);
      } catch (error) {
        this.#log.error({ err: error, event }, 'motion client listener threw');
      }
    }
  }

  /** Token exchange, upgrade and configure/confirm. Rejects with a MotionError. Single use. */
  async connect(signal?: AbortSignal): Promise<MotionConfirm> {
    if (this.#state !== 'new') {
      throw new MotionError('a MotionClient connects once; create a new one', { phase: 'connect', reason: 'not_connected', retryable: false });
    }
    this.#state = 'connecting';
    const options = this.#options;
    const { consoleUrl, ingressUrl } = resolveEndpoints(options);
    let token: string;
    try {
      token = await fetchSessionToken({
        consoleUrl,
        apiKey: options.apiKey,
        ...(options.tokenTtlSeconds === undefined ? {} : { ttlSeconds: options.tokenTtlSeconds }),
        ...(options.handshakeTimeoutMs === undefined ? {} : { timeoutMs: options.handshakeTimeoutMs }),
        ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
    if (this.#state !== 'connecting') {
      throw new MotionError('closed while connecting', { phase: 'token', reason: 'not_connected', retryable: false });
    }
    return this.#open(ingressUrl, token, signal);
  }

  #open(ingressUrl: string, token: string, signal: AbortSignal | undefined): Promise<MotionConfirm> {
    const options = this.#options;
    const url = new URL(`${ingressUrl}/websocket`);
    url.searchParams.set('id', options.avatarId);
    const headers: Record<string, string> = {};
    if (options.useQueryAuth === true) {
      url.searchParams.set('appId', options.appId);
      url.searchParams.set('sessionKey', token);
    } else {
      headers['X-App-ID'] = options.appId;
      headers['X-Session-Key'] = token;
    }
    this.#log.debug({ host: url.host, path: url.pathname, queryAuth: options.useQueryAuth === true }, 'connecting to Motion Server');

    return new Promise<MotionConfirm>((resolve, reject) => {
      let settled = false;
      const socket = new WebSocket(url, {
        headers,
        perMessageDeflate: false,
        maxPayload: options.maxPayload ?? 4 * 1024 * 1024,
        handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      });
      this.#socket = socket;
      const finish = (error: MotionError | undefined, confirm?: MotionConfirm): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#abortConnect = undefined;
        if (error === undefined && confirm !== undefined) {
          this.#state = 'open';
          resolve(confirm);
          return;
        }
        this.#state = 'closed';
        this.#socket = undefined;
        socket.removeAllListeners('message');
        if (socket.readyState === WebSocket.OPEN) socket.close(1000);
        else socket.terminate();
        reject(error);
      };
      const timer = setTimeout(() => {
        finish(
          new MotionError(`Motion Server handshake timed out after ${options.handshakeTimeoutMs ?? 10_000} ms`, {
            phase: 'handshake',
            reason: 'handshake_timeout',
            retryable: true,
          }),
        );
      }, options.handshakeTimeoutMs ?? 10_000);
      const onAbort = (): void => {
        finish(new MotionError('connect aborted', { phase: 'connect', reason: 'not_connected', retryable: false }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#abortConnect = finish;

      socket.on('unexpected-response', (request: ClientRequest, response: IncomingMessage) => {
        const status = response.statusCode ?? 0;
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        const done = (): void => {
          finish(upgradeError(status, body));
          request.destroy();
        };
        response.once('end', done);
        response.once('error', done);
      });
      socket.on('error', (error: Error) => {
        if (!settled) {
          finish(new MotionError(`cannot reach the Motion Server: ${error.message}`, { phase: 'connect', reason: 'network', retryable: true, cause: error }));
          return;
        }
        this.#log.debug({ err: error }, 'motion socket error');
      });
      socket.on('open', () => {
        socket.send(
          encodeMessage({
            type: 'client.configureSession',
            sampleRate: this.sampleRate,
            audioFormat: 'pcm_s16le',
            ...(options.bitrate === undefined ? {} : { bitrate: options.bitrate }),
            ...(options.egress === undefined ? {} : { egress: options.egress }),
            ...(options.extraParams === undefined ? {} : { extraParams: options.extraParams }),
          }),
        );
      });
      socket.on('close', (code: number, reasonBuffer: Buffer) => {
        const reason = reasonBuffer.toString('utf8');
        if (!settled) {
          finish(closeError(code, reason, 'handshake'));
          return;
        }
        this.#closed(closeError(code, reason, 'stream'));
      });
      socket.on('message', (data: RawData, isBinary: boolean) => {
        const receivedAt = performance.now();
        if (!isBinary) {
          const error = new MotionError('Motion Server sent a text frame; every frame must be a binary envelope', {
            phase: settled ? 'stream' : 'handshake',
            reason: 'protocol',
            retryable: false,
          });
          if (!settled) finish(error);
          else this.#fail(error, 1003);
          return;
        }
        const bytes = rawBytes(data);
        if (!settled) {
          this.#onHandshakeMessage(bytes, (error, confirm) => finish(error, confirm));
          return;
        }
        this.#onMessage(bytes, receivedAt);
      });
    });
  }

  #onHandshakeMessage(bytes: Uint8Array, done: (error: MotionError | undefined, confirm?: MotionConfirm) => void): void {
    let message;
    try {
      message = decodeMessage(bytes);
    } catch (error) {
      done(new MotionError('malformed envelope during the handshake', { phase: 'handshake', reason: 'protocol', retryable: false, cause: error }));
      return;
    }
    if (message.type === 'server.confirmSession') {
      if (message.connectionId === '') {
        done(new MotionError('SERVER_CONFIRM_SESSION with an empty connection_id', { phase: 'handshake', reason: 'protocol', retryable: false }));
        return;
      }
      this.#connectionId = message.connectionId;
      this.#log.debug({ connectionId: message.connectionId }, 'Motion Server session confirmed');
      done(undefined, { connectionId: message.connectionId, capabilities: message.capabilities });
      return;
    }
    if (message.type === 'server.error') {
      const auth = message.code === SERVER_ERROR_CODES.unauthenticated;
      done(
        new MotionError(`Motion Server rejected the session (code ${message.code}): ${message.message}`, {
          phase: 'handshake',
          reason: auth ? 'auth_failed' : 'handshake_rejected',
          serverCode: message.code,
          retryable: serverErrorRetryable(message.code),
        }),
      );
      return;
    }
    done(new MotionError(`unexpected ${message.type} before SERVER_CONFIRM_SESSION`, { phase: 'handshake', reason: 'protocol', retryable: false }));
  }

  #onMessage(bytes: Uint8Array, receivedAt: number): void {
    this.#stats.envelopes += 1;
    let peek;
    try {
      peek = peekEnvelope(bytes);
    } catch (error) {
      this.#stats.malformedEnvelopes += 1;
      this.#emit('error', new MotionError('malformed envelope from the Motion Server', { phase: 'stream', reason: 'protocol', retryable: false, cause: error }));
      return;
    }
    const header = peek.animation;
    if (peek.type === MESSAGE_TYPE.serverResponseAnimation && header !== undefined) {
      if (!this.#active.has(header.reqId)) {
        // Frames of an interrupted or finished request, or a repeated egress `end`: not ours any more.
        this.#stats.droppedEnvelopes += 1;
        return;
      }
      if (header.end) this.#active.delete(header.reqId);
      this.#emit('animation', {
        bytes,
        reqId: header.reqId,
        end: header.end,
        connectionId: header.connectionId,
        keyframeCount: header.keyframeCount,
        receivedAt,
      });
      if (header.end) this.#maybeIdle();
      return;
    }
    let message;
    try {
      message = decodeMessage(bytes);
    } catch (error) {
      this.#stats.malformedEnvelopes += 1;
      this.#emit('error', new MotionError('malformed envelope from the Motion Server', { phase: 'stream', reason: 'protocol', retryable: false, cause: error }));
      return;
    }
    if (message.type === 'server.error') {
      const known = message.reqId !== '' && this.#active.delete(message.reqId);
      if (known && this.#currentReqId === message.reqId) this.#currentReqId = undefined;
      this.#emit(
        'error',
        new MotionError(`Motion Server error (code ${message.code}): ${message.message}`, {
          phase: 'stream',
          reason: 'server_error',
          serverCode: message.code,
          retryable: serverErrorRetryable(message.code),
          ...(message.reqId === '' ? {} : { reqId: message.reqId }),
        }),
      );
      if (known) this.#maybeIdle();
      return;
    }
    this.#stats.droppedEnvelopes += 1;
  }

  #maybeIdle(): void {
    if (this.#active.size === 0 && this.#currentReqId === undefined) this.#emit('idle', undefined);
  }

  #requireOpen(): WebSocket {
    const socket = this.#socket;
    if (this.#state !== 'open' || socket === undefined || socket.readyState !== WebSocket.OPEN) {
      throw new MotionError('the Motion Server connection is not open', { phase: 'stream', reason: 'not_connected', retryable: false });
    }
    return socket;
  }

  /**
   * Sends agent speech (mono PCM16 at `sampleRate`). Every call until one with `end=true` belongs
   * to the same reply and req_id; the next call after an `end` or an interrupt starts a new one.
   * Returns the req_id used.
   */
  sendAudio(pcm: Int16Array, end: boolean): string {
    const socket = this.#requireOpen();
    const reqId = this.#currentReqId ?? newReqId();
    if (this.#currentReqId === undefined) {
      this.#currentReqId = reqId;
      this.#active.add(reqId);
    }
    const audio = pcmBytes(pcm);
    socket.send(encodeMessage({ type: 'client.audioInput', reqId, end, audio }));
    this.#stats.audioBytesSent += audio.byteLength;
    if (end) this.#currentReqId = undefined;
    return reqId;
  }

  /**
   * Barge-in: CLIENT_INTERRUPT for every request still streaming; their frames are dropped from now
   * on. Resolves, with the interrupted req_ids, once the interrupt is written to the socket.
   */
  interrupt(): Promise<string[]> {
    const socket = this.#requireOpen();
    const reqIds = [...this.#active];
    this.#active.clear();
    this.#currentReqId = undefined;
    if (reqIds.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      let pending = reqIds.length;
      for (const reqId of reqIds) {
        socket.send(encodeMessage({ type: 'client.interrupt', reqId }), (error) => {
          if (error !== undefined && error !== null) {
            reject(new MotionError('interrupt could not be sent', { phase: 'stream', reason: 'network', retryable: true, cause: error }));
            return;
          }
          pending -= 1;
          if (pending === 0) {
            resolve(reqIds);
            this.#maybeIdle();
          }
        });
      }
    });
  }

  #fail(error: MotionError, code: number): void {
    const socket = this.#socket;
    this.#closed(error);
    socket?.close(code);
  }

  #closed(error: MotionError | undefined): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#active.clear();
    this.#currentReqId = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.removeAllListeners('message');
    if (error !== undefined) this.#log.info({ reason: error.reason, closeCode: error.closeCode, retryable: error.retryable }, 'Motion Server connection closed');
    this.#emit('close', error);
  }

  /** Closes the connection (or abandons a connect in progress). Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting') {
      const abort = this.#abortConnect;
      if (abort !== undefined) {
        abort(new MotionError('closed while connecting', { phase: 'connect', reason: 'not_connected', retryable: false }));
        return;
      }
      this.#state = 'closed';
      return;
    }
    if (this.#state === 'new') {
      this.#state = 'closed';
      return;
    }
    const socket = this.#socket;
    this.#closed(undefined);
    if (socket !== undefined && socket.readyState === WebSocket.OPEN) socket.close(1000);
    else socket?.terminate();
  }
}
