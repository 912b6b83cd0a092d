/**
 * Audio over the client's existing WebSocket: binary frames of raw PCM16 little-endian mono in
 * both directions. The server owns the socket and routes binary frames here (`receive`); JSON
 * text messages never reach this class. `close()` detaches from the socket without closing it.
 */
import type { WebSocket } from 'ws';
import { AudioFormatError, ConfigError, ProtocolError, toVoxError, TransportError, type VoxError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import type {
  AudioFormat,
  AudioListener,
  AudioTransport,
  PlaybackProgress,
  TransportClosedInfo,
  Unsubscribe,
} from './audio-transport.js';
import { InboundRateMeter, type InboundRateOptions } from './inbound-rate.js';
import { ListenerSet } from './listeners.js';
import { pcm16FromBytes, pcm16ToBytes } from './pcm16.js';

/** The part of a `ws` WebSocket this transport uses (a stub with these members works in tests). */
export type AudioSocket = Pick<WebSocket, 'send' | 'bufferedAmount' | 'readyState' | 'once' | 'off'>;

export interface WebSocketAudioTransportOptions {
  /** Rate of the client's inbound PCM16, as negotiated in `session.hello`. */
  readonly sampleRate: number;
  /** Rate of outbound frames. Default: `sampleRate`. */
  readonly outputSampleRate?: number;
  /**
   * Outbound frames wait in this transport's queue while `socket.bufferedAmount` is at or above
   * this many bytes. Default: 3 outbound frames' worth, `3 × outputFrameSamples × 2` bytes (60 ms
   * of audio: 1 920 bytes at 16 kHz, 5 760 at 48 kHz).
   *
   * Bytes handed to `socket.send()` cannot be recalled when a reply is cancelled, while queued
   * frames can (`clearOutput`), so this bounds the cancelled audio that may still leave ws's
   * buffer: under this plus one frame (3 frames with the default; 64 KiB would be 2 s of 16 kHz
   * audio). ws's buffer only grows once the kernel stops taking bytes, so a small value costs no
   * throughput; it keeps the backlog where it can be dropped. Whatever the kernel's TCP buffers
   * already hold is beyond any transport's reach and is not counted here.
   */
  readonly maxBufferedBytes?: number;
  /** Queue length beyond which the oldest outbound frames are dropped. Default 50 (1 s of 20 ms frames). */
  readonly maxQueuedFrames?: number;
  /**
   * Longest inbound frame, in ms of audio at `sampleRate`. A longer one is dropped and reported
   * (`protocol_message_too_large`, not fatal). Default: no limit (the socket's `maxPayload` only).
   */
  readonly maxFrameMs?: number;
  /**
   * Inbound audio faster than real time (./inbound-rate.ts): frames over the rate are dropped, the
   * first drop of an episode is reported (`audio_rate_exceeded`, not fatal), and an excess that
   * lasts `refuseAfterMs` ends the transport with `audio_rate_exceeded` (`onClosed`, reason
   * `failed`). Default: no limit.
   */
  readonly inboundRate?: InboundRateOptions;
  /** The monotonic clock inbound frames are timed on, in ms. Default `performance.now`. */
  readonly now?: () => number;
  readonly logger?: Logger;
}

export interface WebSocketAudioStats {
  readonly framesIn: number;
  readonly framesOut: number;
  /** Outbound frames dropped because the client could not keep up. */
  readonly droppedFrames: number;
  /** Outbound frames dropped from the queue by `clearOutput` (a reply was cancelled). */
  readonly clearedFrames: number;
  /** Inbound frames rejected as malformed. */
  readonly invalidFrames: number;
  /** Inbound frames longer than `maxFrameMs`, dropped. */
  readonly oversizedFrames: number;
  /** Inbound frames dropped for arriving faster than `inboundRate` allows. */
  readonly throttledFrames: number;
  readonly queuedFrames: number;
}

/** Default `maxBufferedBytes`, in outbound frames (see the option). */
const DEFAULT_MAX_BUFFERED_FRAMES = 3;

/** Binary payload shapes `ws` hands to a 'message' listener. */
export type BinaryData = Buffer | ArrayBuffer | Buffer[] | Uint8Array;

const OPEN = 1;

export class WebSocketAudioTransport implements AudioTransport {
  readonly kind = 'websocket' as const;
  readonly inputFormat: AudioFormat;
  readonly outputSampleRate: number;
  readonly outputFrameSamples: number;

  readonly #socket: AudioSocket;
  readonly #logger: Logger;
  readonly #maxBufferedBytes: number;
  readonly #maxQueuedFrames: number;
  /** Longest inbound frame in bytes (Infinity: no limit). */
  readonly #maxFrameBytes: number;
  readonly #maxFrameMs: number | undefined;
  readonly #rate: InboundRateMeter | undefined;
  readonly #now: () => number;
  readonly #queue: Buffer[] = [];
  readonly #audio: ListenerSet<[Int16Array, number]>;
  readonly #errors: ListenerSet<[VoxError]>;
  readonly #closedListeners: ListenerSet<[TransportClosedInfo]>;
  readonly #progress: ListenerSet<[PlaybackProgress]>;
  readonly #onSocketClose = (): void => this.#finish({ reason: 'remote' });
  readonly #onSent = (error?: Error): void => {
    if (error === undefined || error === null) this.#drain();
  };
  #closed = false;
  #framesIn = 0;
  #framesOut = 0;
  #droppedFrames = 0;
  #clearedFrames = 0;
  #invalidFrames = 0;
  #oversizedFrames = 0;

  constructor(socket: AudioSocket, options: WebSocketAudioTransportOptions) {
    if (!Number.isInteger(options.sampleRate) || options.sampleRate <= 0) {
      throw new AudioFormatError('audio_invalid_format', `sampleRate must be a positive integer, got ${options.sampleRate}`);
    }
    this.#socket = socket;
    this.#logger = (options.logger ?? silentLogger()).child({ transport: 'websocket' });
    this.inputFormat = { sampleRate: options.sampleRate, channels: 1 };
    this.outputSampleRate = options.outputSampleRate ?? options.sampleRate;
    this.outputFrameSamples = Math.round(this.outputSampleRate / 50);
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_FRAMES * this.outputFrameSamples * 2;
    this.#maxQueuedFrames = Math.max(1, options.maxQueuedFrames ?? 50);
    if (options.maxFrameMs !== undefined && !(Number.isFinite(options.maxFrameMs) && options.maxFrameMs > 0)) {
      throw new ConfigError('maxFrameMs', `must be a positive number of milliseconds, got ${String(options.maxFrameMs)}`);
    }
    this.#maxFrameMs = options.maxFrameMs;
    // Whole samples only: a limit that fell between two samples would refuse an exact frame.
    this.#maxFrameBytes = options.maxFrameMs === undefined ? Number.POSITIVE_INFINITY : Math.floor((options.maxFrameMs * options.sampleRate) / 1000) * 2;
    this.#rate = options.inboundRate === undefined ? undefined : new InboundRateMeter(options.inboundRate);
    this.#now = options.now ?? (() => performance.now());
    this.#audio = new ListenerSet(this.#logger, 'audio');
    this.#errors = new ListenerSet(this.#logger, 'error');
    this.#closedListeners = new ListenerSet(this.#logger, 'closed');
    this.#progress = new ListenerSet(this.#logger, 'playbackProgress');
    socket.once('close', this.#onSocketClose);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): WebSocketAudioStats {
    return {
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      droppedFrames: this.#droppedFrames,
      clearedFrames: this.#clearedFrames,
      invalidFrames: this.#invalidFrames,
      oversizedFrames: this.#oversizedFrames,
      throttledFrames: this.#rate?.stats.droppedFrames ?? 0,
      queuedFrames: this.#queue.length,
    };
  }

  onAudio(listener: AudioListener): Unsubscribe {
    return this.#audio.add(listener);
  }

  onError(listener: (error: VoxError) => void): Unsubscribe {
    return this.#errors.add(listener);
  }

  onClosed(listener: (info: TransportClosedInfo) => void): Unsubscribe {
    return this.#closedListeners.add(listener);
  }

  onPlaybackProgress(listener: (progress: PlaybackProgress) => void): Unsubscribe {
    return this.#progress.add(listener);
  }

  /**
   * Delivers one binary WebSocket frame from the client. Never throws: a malformed or oversized
   * frame is counted, reported through `onError` and dropped; so is a frame over the inbound rate
   * (reported once per excess episode). The samples handed to `onAudio` listeners may be a view of
   * `data` (no copy), so `data` must not be written to afterwards — as `ws` never does.
   */
  receive(data: BinaryData): void {
    if (this.#closed) return;
    let pcm: Int16Array;
    try {
      const bytes = toBytes(data);
      if (bytes.byteLength === 0) return;
      if (bytes.byteLength > this.#maxFrameBytes) {
        this.#oversizedFrames++;
        const ms = Math.round((bytes.byteLength / 2 / this.inputFormat.sampleRate) * 1000);
        this.#errors.emit(
          new ProtocolError('protocol_message_too_large', `audio frame of ${bytes.byteLength} bytes (${ms} ms) exceeds ${this.#maxFrameMs} ms (${this.#maxFrameBytes} bytes) at ${this.inputFormat.sampleRate} Hz`),
        );
        return;
      }
      pcm = pcm16View(bytes);
    } catch (error) {
      this.#invalidFrames++;
      this.#errors.emit(toVoxError(error, 'audio_invalid_format'));
      return;
    }
    if (this.#rate !== undefined && !this.#admit(pcm.length)) return;
    this.#framesIn++;
    this.#audio.emit(pcm, this.inputFormat.sampleRate);
  }

  /** The inbound rate's verdict on a frame of `samples`: true to pass it on. */
  #admit(samples: number): boolean {
    const verdict = (this.#rate as InboundRateMeter).admit((samples * 1000) / this.inputFormat.sampleRate, this.#now());
    if (verdict === 'accept') return true;
    if (verdict === 'throttle') {
      this.#logger.warn('client audio arrives faster than real time; dropping frames');
      this.#errors.emit(new TransportError('audio_rate_exceeded', 'audio arrives faster than real time allows; frames over the rate are dropped'));
    } else if (verdict === 'refuse') {
      this.#logger.warn({ throttledFrames: this.#rate?.stats.droppedFrames }, 'client kept sending audio faster than real time; refusing it');
      this.#finish({ reason: 'failed', error: new TransportError('audio_rate_exceeded', 'audio kept arriving faster than real time allows') });
    }
    return false;
  }

  /** Delivers a `playback.progress` report the server parsed from the client's JSON. */
  reportPlaybackProgress(progress: PlaybackProgress): void {
    if (this.#closed) return;
    this.#progress.emit(progress);
  }

  sendAudio(frame: Int16Array): void {
    if (this.#closed) return;
    if (!(frame instanceof Int16Array)) {
      this.#errors.emit(new AudioFormatError('audio_invalid_format', 'sendAudio expects an Int16Array'));
      return;
    }
    this.#queue.push(pcm16ToBytes(frame));
    while (this.#queue.length > this.#maxQueuedFrames) {
      this.#queue.shift();
      this.#droppedFrames++;
      if (this.#droppedFrames === 1 || this.#droppedFrames % 50 === 0) {
        this.#logger.warn({ droppedFrames: this.#droppedFrames }, 'client is not keeping up; dropping oldest audio frames');
      }
    }
    this.#drain();
  }

  /**
   * Empties the outbound queue. Frames already passed to `socket.send()` (at most
   * `maxBufferedBytes` plus one frame in ws's buffer, and whatever the kernel holds) still go out.
   */
  clearOutput(): number {
    if (this.#closed) return 0;
    const cleared = this.#queue.length;
    this.#queue.length = 0;
    this.#clearedFrames += cleared;
    return cleared;
  }

  close(): Promise<void> {
    this.#finish({ reason: 'closed' });
    return Promise.resolve();
  }

  #drain(): void {
    while (
      !this.#closed &&
      this.#queue.length > 0 &&
      this.#socket.readyState === OPEN &&
      this.#socket.bufferedAmount < this.#maxBufferedBytes
    ) {
      const bytes = this.#queue.shift() as Buffer;
      this.#framesOut++;
      try {
        // The callback fires once the bytes are written: that is when more may fit.
        this.#socket.send(bytes, { binary: true }, this.#onSent);
      } catch (error) {
        this.#errors.emit(toVoxError(error));
        return;
      }
    }
  }

  #finish(info: TransportClosedInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.off('close', this.#onSocketClose);
    this.#queue.length = 0;
    this.#closedListeners.emit(info);
    this.#audio.clear();
    this.#errors.clear();
    this.#closedListeners.clear();
    this.#progress.clear();
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A received message's PCM16 as samples without a copy when the bytes are aligned (an even offset, a
 * little-endian machine): a view, which is safe because `ws` hands each message over once and never
 * writes to it again. Otherwise (and for a torn sample: the same error) {@link pcm16FromBytes}.
 */
function pcm16View(bytes: Uint8Array): Int16Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0 && bytes.byteLength % 2 === 0) {
    return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  }
  return pcm16FromBytes(bytes);
}

function toBytes(data: BinaryData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) return Buffer.concat(data);
  throw new AudioFormatError('audio_invalid_format', 'unsupported binary frame type');
}
