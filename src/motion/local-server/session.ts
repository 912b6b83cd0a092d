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
import { MotionAnimator } from './animator.js';
import type { FaultPlan } from './faults.js';
import type { LocalMotionServerOptions, LocalMotionServerStats } from './types.js';

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

export interface MotionSessionsContext {
  readonly options: LocalMotionServerOptions;
  readonly faults: FaultPlan;
  readonly stats: LocalMotionServerStats;
  readonly log: Logger;
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
    const rejected = this.#faults.take('rejectConfigure');
    if (rejected !== undefined) {
      this.#error(connection, rejected.code, rejected.message ?? 'fault injection');
      return;
    }
    connection.configured = message;
    const closeAfter = this.#faults.take('closeAfterFrames');
    if (closeAfter !== undefined) connection.closeAfter = { frames: closeAfter.frames, code: closeAfter.code, reason: closeAfter.reason ?? '' };
    const drop = this.#faults.take('dropAfterFrames');
    if (drop !== undefined) connection.dropAfter = drop.frames;
    const connectionId = this.#faults.current.emptyConnectionId === true ? '' : connection.id;
    this.#later(connection, this.#faults.current.confirmDelayMs ?? 0, () => {
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
      if (connection.interrupted.has(reqId) || connection.socket.readyState !== WebSocket.OPEN) return;
      this.#send(connection, bytes);
      connection.sent += 1;
      this.#stats.animationMessages += 1;
      if (end) connection.requests.delete(reqId);
      this.#checkFaults(connection);
    });
  }
}
