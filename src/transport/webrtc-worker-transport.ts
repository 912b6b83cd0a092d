/**
 * The main-thread side of a WebRTC transport that runs in a worker thread (WebRtcWorkerPool): the
 * same AudioTransport, signalling and stats as {@link WebRtcTransport}, while werift, Opus and the
 * jitter buffer run in the worker.
 *
 * Pacing stays here. The session's playout paces frames with its drift-free PlayoutClock and
 * counts what it hands to `sendAudio` as played (the words heard, the position a barge-in pauses
 * at and a false interruption resumes from). The worker keeps no queue: a frame crosses in the
 * batch of the turn it was handed in (one message per worker per turn) and goes out as soon as it
 * arrives, so the 20 ms schedule on the wire is the playout clock's, and a pause stops on the frame.
 *
 * clearOutput crosses the thread through shared memory, not a message (a message would queue behind
 * the very frames it must stop). Frames are numbered; one shared Int32 word (DECIDED) holds the last
 * frame whose fate is settled, and both threads move it with compare-exchange, so every frame is
 * either sent (the worker claimed it) or withdrawn (clearOutput moved the word past it), never both,
 * and nothing withdrawn can be sent later. See `clearOutput` for how the count stays exact.
 */
import { AudioFormatError, InvalidStateError, TransportError, type VoxError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import type { AudioFormat, AudioListener, TransportClosedInfo, Unsubscribe } from './audio-transport.js';
import { ListenerSet } from './listeners.js';
import {
  OPUS_SAMPLE_RATE,
  type HandleOfferOptions,
  type IceCandidateInit,
  type OpusPcmRate,
  type WebRtcConnectionState,
  type WebRtcPeerTransport,
  type WebRtcStats,
  type WebRtcTransportOptions,
} from './webrtc.js';
import { SHARED, SHARED_SLOTS, deserializeError, type FromWorker, type ToWorker } from './webrtc-worker-messages.js';

/** Opus frame durations (2.5–60 ms), in ms. */
const OPUS_FRAME_MS = [2.5, 5, 10, 20, 40, 60];

/** The worker a transport lives on, as the transport sees it (WebRtcWorkerPool's slot). */
export interface WorkerLink {
  readonly threadId: number;
  readonly dead: boolean;
  readonly handlers: ReadonlyMap<number, WorkerSessionHandler>;
  /** Routes the worker's messages about session `id` to `handler` (a worker with sessions keeps the process alive). */
  attach(id: number, handler: WorkerSessionHandler): void;
  /** Sends a message after the frames queued before it. */
  post(message: ToWorker, transfer?: ArrayBuffer[]): void;
  /** Queues one frame for this turn's batch (copied). */
  queueFrame(id: number, index: number, frame: Int16Array): void;
  /** Posts this turn's batch now. */
  flush(): void;
  detach(id: number): void;
}

/** What the pool calls on a transport. */
export interface WorkerSessionHandler {
  audio(pcm: Int16Array): void;
  message(message: Exclude<FromWorker, { type: 'ready' | 'audio' }>): void;
  /** The worker died. */
  failed(error: TransportError): void;
  close(): Promise<void>;
}

const pino = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' } as const;

export class WebRtcWorkerTransport implements WebRtcPeerTransport {
  readonly kind = 'webrtc' as const;
  readonly inputFormat: AudioFormat;
  readonly outputSampleRate: OpusPcmRate;
  readonly outputFrameSamples: number;
  readonly #frameSizes: ReadonlySet<number>;
  readonly #link: WorkerLink;
  readonly #id: number;
  readonly #shared: Int32Array;
  readonly #clearWaitMs: number;
  readonly #logger: Logger;
  readonly #audio: ListenerSet<[Int16Array, number]>;
  readonly #errors: ListenerSet<[VoxError]>;
  readonly #closedListeners: ListenerSet<[TransportClosedInfo]>;
  readonly #candidates: ListenerSet<[IceCandidateInit | null]>;
  readonly #states: ListenerSet<[WebRtcConnectionState]>;
  readonly #requests = new Map<number, { resolve: (value: string | undefined) => void; reject: (error: VoxError) => void }>();
  #nextRequest = 1;
  #state: WebRtcConnectionState = 'new';
  /** Frames handed to sendAudio so far; frame k has index k. */
  #handed = 0;
  #framesCleared = 0;
  /** Candidates the worker sent while an answer was on its way: they must not overtake it. */
  #heldCandidates: Array<IceCandidateInit | null> | undefined;
  #closePromise: Promise<void> | undefined;
  #released: (() => void) | undefined;

  constructor(link: WorkerLink, id: number, options: WebRtcTransportOptions, clearWaitMs: number) {
    const { logger, ...rest } = options;
    this.#link = link;
    this.#id = id;
    this.#clearWaitMs = clearWaitMs;
    this.#logger = (logger ?? silentLogger()).child({ transport: 'webrtc', worker: link.threadId });
    this.#audio = new ListenerSet(this.#logger, 'audio');
    this.#errors = new ListenerSet(this.#logger, 'error');
    this.#closedListeners = new ListenerSet(this.#logger, 'closed');
    this.#candidates = new ListenerSet(this.#logger, 'iceCandidate');
    this.#states = new ListenerSet(this.#logger, 'state');
    const inputRate = options.inputSampleRate ?? OPUS_SAMPLE_RATE;
    const outputRate = options.outputSampleRate ?? OPUS_SAMPLE_RATE;
    this.inputFormat = { sampleRate: inputRate, channels: 1 };
    this.outputSampleRate = outputRate;
    this.outputFrameSamples = outputRate / 50;
    this.#frameSizes = new Set(OPUS_FRAME_MS.map((ms) => (ms * outputRate) / 1000));
    const shared = new SharedArrayBuffer(SHARED_SLOTS * Int32Array.BYTES_PER_ELEMENT);
    this.#shared = new Int32Array(shared);
    link.attach(id, {
      audio: (pcm) => this.#audio.emit(pcm, inputRate),
      message: (message) => this.#receive(message),
      failed: (error) => {
        this.#released?.(); // a close() waiting for the worker's answer will not get one
        void this.#finish({ reason: 'failed', error }, false);
      },
      close: () => this.close(),
    });
    link.post({ type: 'open', id, options: rest, shared, logLevel: this.#logger.level });
  }

  /** The worker thread this transport runs on. */
  get workerThreadId(): number {
    return this.#link.threadId;
  }

  get closed(): boolean {
    return this.#closePromise !== undefined;
  }

  get connectionState(): WebRtcConnectionState {
    return this.#state;
  }

  /** The worker-side counters (published once per worker turn) and this side's. */
  get stats(): WebRtcStats {
    const read = (slot: number): number => Atomics.load(this.#shared, slot);
    return {
      packetsIn: read(SHARED.packetsIn),
      packetsOut: read(SHARED.packetsOut),
      packetsLost: read(SHARED.packetsLost),
      packetsLate: read(SHARED.packetsLate),
      packetsReordered: read(SHARED.packetsReordered),
      concealedFrames: read(SHARED.concealedFrames),
      jitterDepthMs: read(SHARED.jitterDepthMs),
      decodeErrors: read(SHARED.decodeErrors),
      droppedFrames: read(SHARED.droppedFrames),
      framesCleared: this.#framesCleared,
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

  onIceCandidate(listener: (candidate: IceCandidateInit | null) => void): Unsubscribe {
    return this.#candidates.add(listener);
  }

  onConnectionStateChange(listener: (state: WebRtcConnectionState) => void): Unsubscribe {
    return this.#states.add(listener);
  }

  whenConnected(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.closed) return Promise.reject(new InvalidStateError('session_invalid_state', 'transport is closed'));
    return new Promise((resolve, reject) => {
      const offState = this.#states.add((state) => {
        if (state !== 'connected') return;
        offState();
        offClosed();
        resolve();
      });
      const offClosed = this.#closedListeners.add((info) => {
        offState();
        offClosed();
        reject(info.error ?? new InvalidStateError('session_invalid_state', `transport ${info.reason} before connecting`));
      });
    });
  }

  /** As WebRtcTransport.handleOffer; trickled candidates follow only after this promise resolves. */
  async handleOffer(sdp: string, options: HandleOfferOptions = {}): Promise<string> {
    if (this.closed) throw new InvalidStateError('session_invalid_state', 'transport is closed');
    this.#heldCandidates ??= [];
    try {
      return (await this.#request((request) => ({ type: 'offer', id: this.#id, request, sdp, trickle: options.trickle === true }))) ?? '';
    } finally {
      const held = this.#heldCandidates ?? [];
      this.#heldCandidates = undefined;
      // After the caller has had a chance to send the answer.
      if (held.length > 0) {
        setImmediate(() => {
          for (const candidate of held) if (!this.closed) this.#candidates.emit(candidate);
        });
      }
    }
  }

  async addIceCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (this.closed) return;
    await this.#request((request) => ({ type: 'ice', id: this.#id, request, candidate }));
  }

  sendAudio(frame: Int16Array): void {
    if (this.closed) return;
    if (!(frame instanceof Int16Array) || !this.#frameSizes.has(frame.length)) {
      this.#errors.emit(
        new AudioFormatError(
          'audio_invalid_format',
          `sendAudio expects 2.5–60 ms of ${this.outputSampleRate / 1000} kHz PCM16 (e.g. ${this.outputFrameSamples} samples), got ${frame instanceof Int16Array ? frame.length : typeof frame}`,
        ),
      );
      return;
    }
    this.#handed++;
    this.#link.queueFrame(this.#id, this.#handed, frame);
  }

  /**
   * A reply was cancelled: no frame handed to sendAudio before this call reaches the socket after
   * it returns, and the count returned is exactly the frames that never will.
   *
   * Frames the worker has not settled yet (handed in this turn, or still crossing) are first given
   * up to `clearWaitMs` (default 5 ms) to go out: the batch is posted now and this thread waits on
   * the shared word (Atomics.wait) for the worker to claim them. They were handed before the cancel
   * and the playout already counted them as played, so sending them before this returns keeps the
   * played position — the heard text of the reply — exact; normally this takes well under a
   * millisecond and nothing is withdrawn. Whatever is still unsettled at the deadline (a worker
   * busy or dead) is withdrawn in one compare-exchange and counted in the return value and in
   * `stats.framesCleared`. Then the worker resets the Opus encoder and starts a new talkspurt, as
   * WebRtcTransport.clearOutput does. Never throws; 0 once closed.
   */
  clearOutput(): number {
    if (this.closed) return 0;
    const last = this.#handed;
    let withdrawn = 0;
    if (Atomics.load(this.#shared, SHARED.DECIDED) < last) {
      // Frames of this turn leave now if they may still go out; with no wait they are withdrawn unseen.
      if (this.#clearWaitMs > 0) this.#link.flush();
      const deadline = performance.now() + this.#clearWaitMs;
      for (;;) {
        const decided = Atomics.load(this.#shared, SHARED.DECIDED);
        if (decided >= last) break;
        const left = deadline - performance.now();
        if (left <= 0 || this.#link.dead) {
          if (Atomics.compareExchange(this.#shared, SHARED.DECIDED, decided, last) === decided) {
            withdrawn = last - decided;
            break;
          }
          continue; // the worker claimed one meanwhile: settle the rest
        }
        Atomics.wait(this.#shared, SHARED.DECIDED, decided, left);
      }
    }
    this.#framesCleared += withdrawn;
    this.#link.post({ type: 'clear', id: this.#id });
    return withdrawn;
  }

  close(): Promise<void> {
    return this.#finish({ reason: 'closed' }, true);
  }

  #request(build: (request: number) => ToWorker): Promise<string | undefined> {
    if (this.#link.dead) return Promise.reject(new TransportError('transport_failed', 'the WebRTC transport worker is gone'));
    const request = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      this.#requests.set(request, { resolve, reject });
      this.#link.post(build(request));
    });
  }

  #receive(message: Exclude<FromWorker, { type: 'ready' | 'audio' }>): void {
    switch (message.type) {
      case 'result': {
        const pending = this.#requests.get(message.request);
        this.#requests.delete(message.request);
        if (message.error === undefined) pending?.resolve(message.value);
        else pending?.reject(deserializeError(message.error));
        return;
      }
      case 'candidate':
        if (this.closed) return;
        if (this.#heldCandidates !== undefined) this.#heldCandidates.push(message.candidate);
        else this.#candidates.emit(message.candidate);
        return;
      case 'state':
        if (this.closed) return;
        this.#state = message.state;
        this.#states.emit(message.state);
        return;
      case 'error':
        this.#errors.emit(deserializeError(message.error));
        return;
      case 'ended':
        void this.#finish({ reason: message.reason, ...(message.error === undefined ? {} : { error: deserializeError(message.error) }) }, false);
        return;
      case 'closed':
        this.#released?.();
        return;
      case 'log':
        this.#log(message.line);
        return;
    }
  }

  #log(line: string): void {
    try {
      const { level, msg, ...fields } = JSON.parse(line) as { level: keyof typeof pino; msg?: string };
      const name = pino[level] ?? 'info';
      this.#logger[name](fields, msg ?? '');
    } catch {
      // not a pino line: nothing to relay
    }
  }

  /**
   * Ends this side once: listeners hear `info`, pending requests fail. With `release`, the worker is
   * asked to close the peer connection and the promise waits for it (or for the worker's death).
   */
  #finish(info: TransportClosedInfo, release: boolean): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#state = 'closed';
    const released = new Promise<void>((resolve) => {
      this.#released = resolve;
    });
    const failure = info.error ?? new InvalidStateError('session_invalid_state', 'transport is closed');
    for (const pending of this.#requests.values()) pending.reject(failure);
    this.#requests.clear();
    this.#closedListeners.emit(info);
    for (const set of [this.#audio, this.#errors, this.#closedListeners, this.#candidates, this.#states]) set.clear();
    const link = this.#link;
    if (release && !link.dead) {
      // Frames still queued go out first, then the close (one port, one order).
      link.post({ type: 'close', id: this.#id });
      this.#closePromise = released.then(() => link.detach(this.#id));
    } else {
      link.detach(this.#id);
      this.#closePromise = Promise.resolve();
    }
    return this.#closePromise;
  }
}
