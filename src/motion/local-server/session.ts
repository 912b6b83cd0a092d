/**
 * WebSocket sessions of the local Motion Server: configure validation, audio in, FLAME keyframes out
 * at 25 fps of audio time, interrupts, the idle timeout, and the close/drop/delay faults.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../../observability/logger.js';
import { decodeMessage, encodeMessage } from '../protocol/codec.js';
import {
  MOTION_CLOSE_CODES,
  MOTION_SAMPLE_RATES,
  SERVER_ERROR_CODES,
  type ConfigureSessionMessage,
  type FlameKeyframe,
} from '../protocol/types.js';
import { AudioFormatError } from '../../errors.js';
import type { OggOpusReader } from '../../audio/ogg-opus.js';
import { MotionAnimator } from './animator.js';
import { audioFormatProblem, requestDecoder } from './audio-input.js';
import type { FaultPlan } from './faults.js';
import type { LocalMotionServerOptions, LocalMotionServerRetained, LocalMotionServerStats } from './types.js';

/** Default of `maxFinishedRequests`. */
export const DEFAULT_MAX_FINISHED_REQUESTS = 1024;

interface RequestState {
  readonly animator: MotionAnimator;
  /**
   * The last byte of a chunk with an odd byte count: half a sample, joined with the next chunk so
   * that every later sample keeps its alignment (the SDKs allow odd-length chunks).
   */
  oddByte: number | undefined;
  /** OGG_OPUS: the request's Ogg Opus stream decoder (audio-input.ts). */
  readonly decoder: OggOpusReader | undefined;
  /** Its Ogg stream was invalid: reported once, the rest of the request is ignored. */
  failed: boolean;
}

/** How a req_id finished: `ended` ones are refused if audio comes again, `interrupted` ones ignored. */
type Finished = 'ended' | 'interrupted';

interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly avatarId: string;
  configured: ConfigureSessionMessage | undefined;
  readonly requests: Map<string, RequestState>;
  /** Finished req_ids, oldest first, at most `maxFinishedRequests`. */
  readonly finished: Map<string, Finished>;
  sent: number;
  seconds: number;
  idleTimer: NodeJS.Timeout | undefined;
  readonly timers: Set<NodeJS.Timeout>;
  closeAfter: { frames: number; code: number; reason: string } | undefined;
  dropAfter: number | undefined;
}

export interface MotionSessionsContext {
  readonly options: LocalMotionServerOptions;
  readonly faults: FaultPlan;
  readonly stats: LocalMotionServerStats;
  readonly log: Logger;
}

/** Prepends the odd byte a previous chunk left over, and keeps this chunk's own odd byte for the next. */
function alignedBytes(request: RequestState, bytes: Uint8Array): Uint8Array {
  let joined = bytes;
  if (request.oddByte !== undefined) {
    joined = new Uint8Array(bytes.byteLength + 1);
    joined[0] = request.oddByte;
    joined.set(bytes, 1);
    request.oddByte = undefined;
  }
  if (joined.byteLength % 2 === 1) {
    request.oddByte = joined[joined.byteLength - 1];
    joined = joined.subarray(0, joined.byteLength - 1);
  }
  return joined;
}

function pcmFrom(bytes: Uint8Array): Int16Array {
  const length = bytes.byteLength >> 1;
  if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, length);
  const copy = new Uint8Array(length * 2);
  copy.set(bytes.subarray(0, length * 2));
  return new Int16Array(copy.buffer);
}

/** The open sessions of one server. */
export class MotionSessions {
  readonly #options: LocalMotionServerOptions;
  readonly #faults: FaultPlan;
  readonly #stats: LocalMotionServerStats;
  readonly #log: Logger;
  readonly #connections = new Set<Connection>();

  constructor(context: MotionSessionsContext) {
    this.#options = context.options;
    this.#faults = context.faults;
    this.#stats = context.stats;
    this.#log = context.log;
  }

  /** Open WebSocket sessions. */
  get size(): number {
    return this.#connections.size;
  }

  /** What the open sessions hold (their request state is freed when they end). */
  retained(): Omit<LocalMotionServerRetained, 'tokens'> {
    let openRequests = 0;
    let finishedRequests = 0;
    for (const connection of this.#connections) {
      openRequests += connection.requests.size;
      finishedRequests += connection.finished.size;
    }
    return { openRequests, finishedRequests };
  }

  /** Ends every session at once (no close frame). */
  terminateAll(): void {
    for (const connection of this.#connections) {
      this.#cleanup(connection);
      connection.socket.terminate();
    }
    this.#connections.clear();
  }

  /** Takes over an upgraded socket. */
  accept(socket: WebSocket, avatarId: string): void {
    this.#stats.connections += 1;
    const connection: Connection = {
      id: `conn_${randomUUID()}`,
      socket,
      avatarId,
      configured: undefined,
      requests: new Map(),
      finished: new Map(),
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
    connection.finished.clear();
  }

  /** Remembers a finished req_id; the oldest are forgotten past `maxFinishedRequests`. */
  #finish(connection: Connection, reqId: string, how: Finished): void {
    connection.requests.delete(reqId);
    connection.finished.delete(reqId);
    connection.finished.set(reqId, how);
    const limit = Math.max(1, this.#options.maxFinishedRequests ?? DEFAULT_MAX_FINISHED_REQUESTS);
    while (connection.finished.size > limit) {
      const oldest = connection.finished.keys().next().value;
      if (oldest === undefined) break;
      connection.finished.delete(oldest);
    }
  }

  #touch(connection: Connection): void {
    clearTimeout(connection.idleTimer);
    connection.idleTimer = setTimeout(() => {
      connection.socket.close(MOTION_CLOSE_CODES.sessionTimeout, 'idle session timeout');
    }, this.#options.idleTimeoutMs ?? 300_000);
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
        // Also after its end: envelopes still queued (frameDelayMs) must not go out any more.
        this.#finish(connection, message.reqId, 'interrupted');
        return;
      default:
        this.#protocolError(connection, 1002, `a client may not send ${message.type}`);
    }
  }

  #configureProblem(message: ConfigureSessionMessage): string | undefined {
    if (!(MOTION_SAMPLE_RATES as readonly number[]).includes(message.sampleRate)) {
      return `sample_rate ${message.sampleRate} is not one of ${MOTION_SAMPLE_RATES.join(', ')}`;
    }
    const audioProblem = audioFormatProblem(message.audioFormat, message.sampleRate);
    if (audioProblem !== undefined) return audioProblem;
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
    const rejected = this.#faults.take('rejectConfigure');
    if (rejected !== undefined) {
      this.#error(connection, rejected.code, rejected.message ?? 'fault injection');
      return;
    }
    const closeBefore = this.#faults.take('closeBeforeConfirm');
    if (closeBefore !== undefined) {
      // What a hosted ingress does when its backend goes away mid-handshake: no confirm, no error.
      this.#cleanup(connection);
      connection.socket.close(closeBefore.code, closeBefore.reason ?? '');
      return;
    }
    connection.configured = message;
    const closeAfter = this.#faults.take('closeAfterFrames');
    if (closeAfter !== undefined) connection.closeAfter = { frames: closeAfter.frames, code: closeAfter.code, reason: closeAfter.reason ?? '' };
    const drop = this.#faults.take('dropAfterFrames');
    if (drop !== undefined) connection.dropAfter = drop.frames;
    const closeAfterMs = this.#faults.take('closeAfterMs');
    const dropAfterMs = this.#faults.take('dropAfterMs');
    const connectionId = this.#faults.current.emptyConnectionId === true ? '' : connection.id;
    this.#later(connection, this.#faults.current.confirmDelayMs ?? 0, () => {
      // The public ServerConfirmSession holds only connection_id.
      this.#send(connection, encodeMessage({ type: 'server.confirmSession', connectionId }));
      if (this.#checkFaults(connection)) return;
      if (closeAfterMs !== undefined) {
        this.#later(connection, Math.max(1, closeAfterMs.ms), () => {
          this.#cleanup(connection);
          connection.socket.close(closeAfterMs.code, closeAfterMs.reason ?? '');
        });
      }
      if (dropAfterMs !== undefined) {
        this.#later(connection, Math.max(1, dropAfterMs.ms), () => {
          this.#cleanup(connection);
          connection.socket.terminate();
        });
      }
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
    const finished = connection.finished.get(reqId);
    if (finished === 'interrupted') return;
    if (finished === 'ended') {
      // The request's end=true was its last word: refuse it rather than animate it a second time.
      this.#error(connection, SERVER_ERROR_CODES.invalidArgument, `req_id ${reqId} already ended`, reqId);
      return;
    }
    let request = connection.requests.get(reqId);
    if (request === undefined) {
      request = {
        animator: new MotionAnimator({ sampleRate: configured.sampleRate, seed: connection.sent + 1, startTime: connection.seconds }),
        oddByte: undefined,
        decoder: requestDecoder(configured.audioFormat, configured.sampleRate),
        failed: false,
      };
      connection.requests.set(reqId, request);
    }
    if (request.failed) {
      if (end) this.#finish(connection, reqId, 'ended');
      return;
    }
    let pcm: Int16Array;
    try {
      pcm = request.decoder === undefined ? pcmFrom(alignedBytes(request, audio)) : request.decoder.push(audio);
    } catch (error) {
      if (!(error instanceof AudioFormatError)) throw error;
      // A broken Ogg stream spoils only its request: ServerError 3 for that req_id, once.
      request.failed = true;
      this.#error(connection, SERVER_ERROR_CODES.invalidArgument, error.message, reqId);
      if (end) this.#finish(connection, reqId, 'ended');
      return;
    }
    const keyframes = request.animator.push(pcm);
    if (end) {
      // A byte still left over at the end is half a sample: there is nothing to animate in it.
      keyframes.push(...request.animator.flush());
      this.#finish(connection, reqId, 'ended');
    }
    connection.seconds += keyframes.length / 25;
    if (configured.egress !== undefined) {
      this.#egressProgress(connection, reqId, end);
      return;
    }
    const perMessage = Math.max(1, this.#options.keyframesPerMessage ?? 1);
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
    const repeats = Math.max(1, this.#options.egressEndRepeats ?? 2);
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
    this.#later(connection, this.#faults.current.frameDelayMs ?? 0, () => {
      if (connection.finished.get(reqId) === 'interrupted' || connection.socket.readyState !== WebSocket.OPEN) return;
      this.#send(connection, bytes);
      connection.sent += 1;
      this.#stats.animationMessages += 1;
      this.#checkFaults(connection);
    });
  }
}
