/**
 * What the main thread and a WebRTC transport worker say to each other (one MessagePort per worker,
 * so everything about a session stays in order), plus the layout of each session's shared memory.
 * Pure: types, constants and two error codecs; no thread or socket is touched here.
 *
 * Frames travel in batches: every frame queued during one event-loop turn goes out in one message
 * whose PCM is a single transferred ArrayBuffer (the samples back to back; `lengths` cuts them).
 */
import {
  AudioFormatError,
  ConfigError,
  InvalidStateError,
  ProtocolError,
  TransportError,
  VoxError,
  type ErrorCode,
} from '../errors.js';
import type { IceCandidateInit, WebRtcConnectionState, WebRtcTransportOptions } from './webrtc.js';

/** The options a worker-side transport is built with (everything but the logger, which cannot cross). */
export type WorkerTransportOptions = Omit<WebRtcTransportOptions, 'logger'>;

/** Frames of several sessions, in order. `indices` (outbound only) numbers each session's frames from 1. */
export interface FrameBatch {
  readonly ids: Int32Array;
  readonly indices?: Int32Array;
  readonly lengths: Int32Array;
  readonly pcm: Int16Array;
}

/**
 * One Int32Array over a SharedArrayBuffer per session. `DECIDED` is the clearOutput fence: the index
 * of the last outbound frame whose fate is settled, sent (claimed by the worker with a
 * compare-exchange from index − 1) or withdrawn (the main thread's `clearOutput` moved it past the
 * frame). One atomic word decides each frame exactly once. The other slots are the transport's
 * counters, published by the worker for the main thread's synchronous `stats`.
 */
export const SHARED = {
  DECIDED: 0,
  packetsIn: 1,
  packetsOut: 2,
  packetsLost: 3,
  packetsLate: 4,
  packetsReordered: 5,
  concealedFrames: 6,
  jitterDepthMs: 7,
  decodeErrors: 8,
  droppedFrames: 9,
} as const;
export const SHARED_SLOTS = 10;

export type StatSlot = Exclude<keyof typeof SHARED, 'DECIDED'>;
export const STAT_SLOTS = Object.keys(SHARED).filter((key) => key !== 'DECIDED') as StatSlot[];

export interface SerializedError {
  readonly name: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/** Data the pool gives each worker at start. */
export interface WorkerData {
  /** Module URLs the worker imports before it takes sessions (instrumentation, benchmarks' probes). */
  readonly preload: readonly string[];
}

export type ToWorker =
  | { readonly type: 'open'; readonly id: number; readonly options: WorkerTransportOptions; readonly shared: SharedArrayBuffer; readonly logLevel: string }
  | { readonly type: 'offer'; readonly id: number; readonly request: number; readonly sdp: string; readonly trickle: boolean }
  | { readonly type: 'ice'; readonly id: number; readonly request: number; readonly candidate: IceCandidateInit | null }
  | { readonly type: 'frames'; readonly batch: FrameBatch }
  /** A reply was cancelled: reset the Opus encoder and start a new talkspurt (after the frames before it). */
  | { readonly type: 'clear'; readonly id: number }
  | { readonly type: 'close'; readonly id: number };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly id: number; readonly request: number; readonly value?: string; readonly error?: SerializedError }
  | { readonly type: 'candidate'; readonly id: number; readonly candidate: IceCandidateInit | null }
  | { readonly type: 'state'; readonly id: number; readonly state: WebRtcConnectionState }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError }
  /** The worker-side transport ended by itself (the peer left, ICE/DTLS failed, connect timeout). */
  | { readonly type: 'ended'; readonly id: number; readonly reason: 'remote' | 'failed'; readonly error?: SerializedError }
  /** Answer to `close`: the peer connection is released. */
  | { readonly type: 'closed'; readonly id: number }
  | { readonly type: 'audio'; readonly batch: FrameBatch }
  /** One pino line (JSON) of a session's worker-side logger, re-logged by the session's own logger. */
  | { readonly type: 'log'; readonly id: number; readonly line: string };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof VoxError) return { name: error.name, code: error.code, message: error.message };
  return { name: 'InvalidStateError', code: 'internal', message: error instanceof Error ? error.message : String(error) };
}

/** Rebuilds an error of the class it was thrown as (the closed set of src/errors.ts). */
export function deserializeError(error: SerializedError): VoxError {
  switch (error.name) {
    case 'ProtocolError':
      return new ProtocolError(error.code, error.message);
    case 'AudioFormatError':
      return new AudioFormatError(error.code, error.message);
    case 'TransportError':
      return new TransportError(error.code, error.message);
    case 'ConfigError': {
      const at = error.message.indexOf(': ');
      return at < 0 ? new ConfigError('options', error.message) : new ConfigError(error.message.slice(0, at), error.message.slice(at + 2));
    }
    default:
      return new InvalidStateError(error.code, error.message);
  }
}
