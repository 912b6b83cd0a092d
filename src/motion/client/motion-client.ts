/**
 * The Server SDK role: one single-use connection to a Motion Server (spec §2–§5).
 *
 * connect() = token exchange + WebSocket upgrade + configure/confirm, settled by exactly one of
 * confirm, server error, close, refusal or timeout. After that: sendAudio() under one req_id per
 * reply, interrupt() or endRequest() on barge-in, close(). Animation envelopes come out as the
 * bytes received, plus the few header fields a relay needs; envelopes of a req_id this client no longer streams are dropped and
 * counted. Every close is reported once, as a typed MotionError carrying the retry decision.
 *
 * Opening the connection (region, token, upgrade, configure/confirm) lives in handshake.ts; this
 * file holds the confirmed connection: request streaming, barge-in, incoming envelopes, close.
 */
import { endianness } from 'node:os';
import { WebSocket } from 'ws';
import { ConfigError } from '../../errors.js';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { MotionError, serverErrorRetryable } from '../errors.js';
import { decodeMessage, encodeMessage, MESSAGE_TYPE, peekEnvelope } from '../protocol/codec.js';
import { MOTION_SAMPLE_RATES, type AudioFormat, type EgressConfig, type MotionSampleRate } from '../protocol/types.js';
import { AUTO_REGION, DEFAULT_REGION, resolveEndpoints, type EndpointOptions } from './endpoints.js';
import { prepareConnection, startHandshake } from './handshake.js';
import { newReqId } from './req-id.js';

export interface MotionClientOptions extends EndpointOptions {
  readonly apiKey: string;
  readonly appId: string;
  readonly avatarId: string;
  /** Auth by query parameters `appId`/`sessionKey` instead of the `X-App-ID`/`X-Session-Key` headers. */
  readonly useQueryAuth?: boolean;
  /** Rate of the PCM passed to sendAudio. Default 16000. */
  readonly sampleRate?: MotionSampleRate;
  /**
   * What `sendAudio` carries, announced in configure: `pcm_s16le` (default) or `ogg_opus` (one Ogg
   * Opus stream per req_id; needs a sampleRate Opus encodes: 8000, 16000, 24000 or 48000).
   */
  readonly audioFormat?: AudioFormat;
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
  /** Where `region: 'auto'` asks for the app's region. Default `https://global.spatialwalk.top/bootstrap`. */
  readonly regionBootstrapUrl?: string;
  /** How long the region bootstrap may take before `us-west` is used. Default 5000 ms. */
  readonly regionBootstrapTimeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
}

export interface MotionConfirm {
  readonly connectionId: string;
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
  /** The req_id sendAudio used last (what the SDK's interrupt names). */
  #lastReqId: string | undefined;
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
    const format = options.audioFormat ?? 'pcm_s16le';
    if (format !== 'pcm_s16le' && format !== 'ogg_opus') throw new ConfigError('audioFormat', "must be 'pcm_s16le' or 'ogg_opus'");
    if (format === 'ogg_opus' && ![8000, 16000, 24000, 48000].includes(rate)) {
      throw new ConfigError('sampleRate', 'ogg_opus needs a rate Opus encodes: 8000, 16000, 24000 or 48000');
    }
    // Checks the URLs now; an 'auto' region is only known at connect(), so a placeholder stands in.
    resolveEndpoints(options.region === AUTO_REGION ? { ...options, region: DEFAULT_REGION } : options);
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
  get audioFormat(): AudioFormat {
    return this.#options.audioFormat ?? 'pcm_s16le';
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

  /** Token exchange, upgrade and configure/confirm (handshake.ts). Rejects with a MotionError. Single use. */
  async connect(signal?: AbortSignal): Promise<MotionConfirm> {
    if (this.#state !== 'new') {
      throw new MotionError('a MotionClient connects once; create a new one', { phase: 'connect', reason: 'not_connected', retryable: false });
    }
    this.#state = 'connecting';
    let target: { readonly ingressUrl: string; readonly token: string };
    try {
      target = await prepareConnection(this.#options, signal, this.#log);
    } catch (error) {
      this.#state = 'closed';
      throw error;
    }
    if (this.#state !== 'connecting') {
      throw new MotionError('closed while connecting', { phase: 'token', reason: 'not_connected', retryable: false });
    }
    return this.#open(target.ingressUrl, target.token, signal);
  }

  #open(ingressUrl: string, token: string, signal: AbortSignal | undefined): Promise<MotionConfirm> {
    const options = this.#options;
    const configure = encodeMessage({
      type: 'client.configureSession',
      sampleRate: this.sampleRate,
      audioFormat: this.audioFormat,
      ...(options.bitrate === undefined ? {} : { bitrate: options.bitrate }),
      ...(options.egress === undefined ? {} : { egress: options.egress }),
      ...(options.extraParams === undefined ? {} : { extraParams: options.extraParams }),
    });
    return new Promise<MotionConfirm>((resolve, reject) => {
      const pending = startHandshake(
        { options, ingressUrl, token, configure, signal, log: this.#log },
        {
          confirmed: (confirm) => {
            this.#abortConnect = undefined;
            this.#connectionId = confirm.connectionId;
            this.#state = 'open';
            resolve(confirm);
          },
          failed: (error) => {
            this.#abortConnect = undefined;
            this.#state = 'closed';
            this.#socket = undefined;
            reject(error);
          },
          message: (bytes, receivedAt) => this.#onMessage(bytes, receivedAt),
          textFrame: (error) => this.#fail(error, 1003),
          closed: (error) => this.#closed(error),
        },
      );
      this.#socket = pending.socket;
      this.#abortConnect = pending.abort;
    });
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
   * Sends agent speech: mono PCM16 at `sampleRate`, or with `audioFormat: 'ogg_opus'` the next bytes
   * of the request's Ogg Opus stream. Every call until one with `end=true` belongs to the same reply
   * and req_id; the next call after an `end`, an interrupt or endRequest() starts a new one.
   * Returns the req_id used.
   */
  sendAudio(audio: Int16Array | Uint8Array, end: boolean): string {
    const socket = this.#requireOpen();
    const reqId = this.#currentReqId ?? newReqId();
    if (this.#currentReqId === undefined) {
      this.#currentReqId = reqId;
      this.#lastReqId = reqId;
      this.#active.add(reqId);
    }
    const bytes = audio instanceof Int16Array ? pcmBytes(audio) : audio;
    socket.send(encodeMessage({ type: 'client.audioInput', reqId, end, audio: bytes }));
    this.#stats.audioBytesSent += bytes.byteLength;
    if (end) this.#currentReqId = undefined;
    return reqId;
  }

  /**
   * Barge-in as the Server SDK does it in egress mode: CLIENT_INTERRUPT for the last req_id only
   * (when its animation is still expected). Frames of every request are dropped from now on.
   * Resolves, with the interrupted req_ids, once the interrupt is written to the socket.
   */
  interrupt(): Promise<string[]> {
    const socket = this.#requireOpen();
    const last = this.#lastReqId;
    const expected = last !== undefined && this.#active.has(last);
    const busy = this.busy;
    this.#active.clear();
    this.#currentReqId = undefined;
    if (!expected) {
      if (busy) this.#maybeIdle();
      return Promise.resolve([]);
    }
    return new Promise((resolve, reject) => {
      socket.send(encodeMessage({ type: 'client.interrupt', reqId: last }), (error) => {
        if (error !== undefined && error !== null) {
          reject(new MotionError('interrupt could not be sent', { phase: 'stream', reason: 'network', retryable: true, cause: error }));
          return;
        }
        resolve([last]);
        this.#maybeIdle();
      });
    });
  }

  /**
   * Barge-in as the Server SDK does it on its own transport: stop sending the current request and
   * end it (CLIENT_AUDIO_INPUT `end=true`, carrying `finalAudio` — an Ogg stream's last page — or
   * nothing). Frames of every request are dropped from now on, so whatever the server still
   * animates from audio it already has never reaches the client. Resolves with the ended req_id
   * (undefined when no request was being sent) once the end is written to the socket.
   */
  endRequest(finalAudio: Uint8Array = new Uint8Array(0)): Promise<string | undefined> {
    const socket = this.#requireOpen();
    const reqId = this.#currentReqId;
    const busy = this.busy;
    this.#active.clear();
    this.#currentReqId = undefined;
    if (reqId === undefined) {
      if (busy) this.#maybeIdle();
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      socket.send(encodeMessage({ type: 'client.audioInput', reqId, end: true, audio: finalAudio }), (error) => {
        if (error !== undefined && error !== null) {
          reject(new MotionError('the end of the request could not be sent', { phase: 'stream', reason: 'network', retryable: true, cause: error }));
          return;
        }
        this.#stats.audioBytesSent += finalAudio.byteLength;
        resolve(reqId);
        this.#maybeIdle();
      });
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
