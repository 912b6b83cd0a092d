/**
 * One audio stream's VAD: re-chunks 16 kHz mono frames of any length into 512-sample windows, scores
 * them on the shared model and turns the probabilities into `vad.*` events (see speech-detector.ts).
 *
 * Bad samples are converted, not fatal: NaN → 0 and values beyond ±1 are clamped (counted in
 * `sanitizedSamples`). A window whose inference fails yields a `vad.error` event and counts as
 * silence (probability 0); the stream keeps running with a fresh model state.
 */
import { AudioFormatError, type VadError } from '../errors.js';
import { sanitizeFloat32 } from '../audio/frame.js';
import { resolveVadConfig, type VadConfig } from './config.js';
import { SILERO_WINDOW } from './model.js';
import { getSharedVad, type SharedVad, type VadInferenceStream, type VadResultCallback } from './shared-vad.js';
import { SpeechDetector, type VadSpeechEvent } from './speech-detector.js';

export interface VadErrorEvent {
  readonly type: 'vad.error';
  readonly error: VadError;
}

/** Everything a VAD stream reports (and the `vad` child actor sends back). */
export type VadEvent = VadSpeechEvent | VadErrorEvent;

export interface VadStreamOptions {
  readonly onEvent: (event: VadEvent) => void;
  readonly config?: Partial<VadConfig>;
  /**
   * Voiced durations (ms) of an utterance at which to send `vad.voiced` (each at most once per
   * utterance, never before `vad.speechStart`). Default [] (no `vad.voiced`).
   */
  readonly voicedMarksMs?: readonly number[];
  /** Defaults to the process-wide {@link getSharedVad}. */
  readonly vad?: SharedVad;
}

export class VadStream {
  readonly config: VadConfig;
  readonly #onEvent: (event: VadEvent) => void;
  readonly #inference: VadInferenceStream;
  readonly #detector: SpeechDetector;
  readonly #window = new Float32Array(SILERO_WINDOW);
  #fill = 0;
  #sanitized = 0;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(options: VadStreamOptions) {
    this.config = resolveVadConfig(options.config);
    this.#onEvent = options.onEvent;
    // The detector first: it validates the marks before a model stream is opened.
    this.#detector = new SpeechDetector(this.config, (event) => this.#emit(event), options.voicedMarksMs ?? []);
    this.#inference = (options.vad ?? getSharedVad()).openStream();
  }

  /** Samples changed by the NaN/clamp rule. */
  get sanitizedSamples(): number {
    return this.#sanitized;
  }

  /** Audio time scored so far, in ms. */
  get positionMs(): number {
    return this.#detector.positionMs;
  }

  get speaking(): boolean {
    return this.#detector.speaking;
  }

  /** Feeds 16 kHz mono samples (any length). Scoring happens asynchronously, in order. */
  push(samples: Float32Array): void {
    if (this.#closed) return;
    if (!(samples instanceof Float32Array)) {
      throw new AudioFormatError('audio_invalid_format', 'VAD input must be a Float32Array of 16 kHz mono samples');
    }
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(SILERO_WINDOW - this.#fill, samples.length - offset);
      this.#window.set(samples.subarray(offset, offset + take), this.#fill);
      this.#fill += take;
      offset += take;
      if (this.#fill === SILERO_WINDOW) {
        this.#sanitized += sanitizeFloat32(this.#window);
        this.#inference.push(this.#window, this.#onResult);
        this.#fill = 0;
      }
    }
  }

  /**
   * End of stream: scores the partial last window (zero-padded), waits for every queued window and
   * closes an open turn (emitting `vad.speechEnd`).
   */
  async flush(): Promise<void> {
    if (this.#closed) return;
    if (this.#fill > 0) {
      this.#window.fill(0, this.#fill);
      this.#inference.push(this.#window, this.#onResult);
      this.#fill = 0;
    }
    await this.whenIdle();
    this.#detector.flush();
  }

  /** Resolves once every window pushed so far has been scored. */
  whenIdle(): Promise<void> {
    if (this.#closed || this.#inference.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Releases the stream's model state; queued windows are dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inference.close();
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  readonly #onResult: VadResultCallback = (error, probability, window) => {
    if (this.#closed) return;
    if (error !== undefined) this.#emit({ type: 'vad.error', error });
    this.#detector.process(error === undefined ? probability : 0, window);
    // The callback runs before the window leaves the queue, so 1 means "this was the last one".
    if (this.#inference.pending <= 1 && this.#idle.length > 0) {
      const idle = this.#idle;
      this.#idle = [];
      queueMicrotask(() => {
        for (const resolve of idle) resolve();
      });
    }
  };

  #emit(event: VadEvent): void {
    if (this.#closed) return;
    this.#onEvent(event);
  }
}
