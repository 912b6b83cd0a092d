/**
 * Turns a sequence of per-window speech probabilities (Silero, 32 ms windows) into turns, and keeps
 * the audio of each turn. Pure: no model, no timers — time is the window index, so `atMs` values are
 * positions in the audio stream, not wall-clock.
 *
 *   silence ──p ≥ threshold──▶ pending ──(minSpeech of p ≥ negativeThreshold)──▶ speech  ⇒ vad.speechStart
 *   pending ──p < negativeThreshold──▶ silence (a blip, no event)
 *   speech ──(minSilence of consecutive p < negativeThreshold)──▶ silence              ⇒ vad.speechEnd
 *
 * `vad.speechStart.atMs` is the start of the first window with p ≥ threshold. `vad.speechEnd.atMs` is
 * the END OF THE LAST SPEECH WINDOW (the event itself is emitted minSilence later, when the silence is
 * known). The utterance audio runs from `prefixPaddingMs` before the onset to `vad.speechEnd.atMs`.
 */
import type { VadConfig } from './config.js';
import { msToWindows } from './config.js';
import { SILERO_SAMPLE_RATE, SILERO_WINDOW, VAD_FRAME_MS } from './model.js';

export interface VadAudio {
  readonly samples: Float32Array;
  readonly sampleRate: 16000;
}

export interface VadSpeechStartEvent {
  readonly type: 'vad.speechStart';
  readonly atMs: number;
}

export interface VadSpeechEndEvent {
  readonly type: 'vad.speechEnd';
  readonly atMs: number;
  readonly durationMs: number;
  readonly audio: VadAudio;
}

export type VadSpeechEvent = VadSpeechStartEvent | VadSpeechEndEvent;

type Phase = 'silence' | 'pending' | 'speech';

export class SpeechDetector {
  readonly config: VadConfig;
  readonly #emit: (event: VadSpeechEvent) => void;
  readonly #minSpeech: number;
  readonly #minSilence: number;
  readonly #maxSpeech: number;
  readonly #prefix: number;
  // Ring of the last `#prefix` windows (audio before a possible onset).
  readonly #ring: Float32Array;
  #ringNext = 0;
  #ringCount = 0;
  // The current utterance's audio, starting at window #uttStart.
  #utt = new Float32Array(SILERO_WINDOW * 16);
  #uttLength = 0;
  #uttStart = 0;
  #phase: Phase = 'silence';
  #index = 0;
  #onset = 0;
  #lastSpeech = 0;
  #silenceRun = 0;

  constructor(config: VadConfig, emit: (event: VadSpeechEvent) => void) {
    this.config = config;
    this.#emit = emit;
    this.#minSpeech = msToWindows(config.minSpeechMs, 1);
    this.#minSilence = msToWindows(config.minSilenceMs, 1);
    this.#maxSpeech = msToWindows(config.maxSpeechMs, 1);
    this.#prefix = msToWindows(config.prefixPaddingMs);
    this.#ring = new Float32Array(this.#prefix * SILERO_WINDOW);
  }

  /** True between `vad.speechStart` and `vad.speechEnd`. */
  get speaking(): boolean {
    return this.#phase === 'speech';
  }

  /** Audio time consumed so far, in ms. */
  get positionMs(): number {
    return this.#index * VAD_FRAME_MS;
  }

  /** Feeds the next window (512 samples) and its probability. */
  process(probability: number, window: Float32Array): void {
    const k = this.#index;
    // Events emitted while handling window k see positionMs = its end (the audio time of the event).
    this.#index = k + 1;
    const { threshold, negativeThreshold } = this.config;
    switch (this.#phase) {
      case 'silence':
        if (probability >= threshold) {
          this.#phase = 'pending';
          this.#onset = k;
          this.#beginUtterance(k);
          this.#append(window);
          if (this.#minSpeech <= 1) this.#confirm(k);
        }
        break;
      case 'pending':
        if (probability >= negativeThreshold) {
          this.#append(window);
          if (k - this.#onset + 1 >= this.#minSpeech) this.#confirm(k);
        } else {
          this.#phase = 'silence';
          this.#uttLength = 0;
        }
        break;
      case 'speech':
        this.#append(window);
        if (probability >= negativeThreshold) {
          this.#silenceRun = 0;
          this.#lastSpeech = k;
          if (k - this.#onset + 1 >= this.#maxSpeech) this.#end();
        } else if (++this.#silenceRun >= this.#minSilence) {
          this.#end();
        }
        break;
    }
    this.#remember(window);
  }

  /** End of stream: closes an open turn at its last speech window (a pending blip is dropped). */
  flush(): void {
    if (this.#phase === 'speech') this.#end();
    this.#phase = 'silence';
    this.#uttLength = 0;
  }

  /** Back to the start of a stream (position 0, no history). */
  reset(): void {
    this.#phase = 'silence';
    this.#uttLength = 0;
    this.#ringCount = 0;
    this.#ringNext = 0;
    this.#index = 0;
  }

  #confirm(k: number): void {
    this.#phase = 'speech';
    this.#lastSpeech = k;
    this.#silenceRun = 0;
    this.#emit({ type: 'vad.speechStart', atMs: this.#onset * VAD_FRAME_MS });
  }

  #end(): void {
    const startMs = this.#onset * VAD_FRAME_MS;
    const endMs = (this.#lastSpeech + 1) * VAD_FRAME_MS;
    const samples = this.#utt.slice(0, (this.#lastSpeech + 1 - this.#uttStart) * SILERO_WINDOW);
    this.#phase = 'silence';
    this.#uttLength = 0;
    this.#emit({
      type: 'vad.speechEnd',
      atMs: endMs,
      durationMs: endMs - startMs,
      audio: { samples, sampleRate: SILERO_SAMPLE_RATE },
    });
  }

  /** Starts the utterance buffer with the padding windows before window k. */
  #beginUtterance(k: number): void {
    this.#uttLength = 0;
    const count = this.#ringCount;
    this.#uttStart = k - count;
    for (let i = 0; i < count; i++) {
      const slot = (this.#ringNext - count + i + this.#prefix) % this.#prefix;
      this.#append(this.#ring.subarray(slot * SILERO_WINDOW, (slot + 1) * SILERO_WINDOW));
    }
  }

  #append(window: Float32Array): void {
    if (this.#uttLength + SILERO_WINDOW > this.#utt.length) {
      const next = new Float32Array(this.#utt.length * 2);
      next.set(this.#utt.subarray(0, this.#uttLength));
      this.#utt = next;
    }
    this.#utt.set(window, this.#uttLength);
    this.#uttLength += SILERO_WINDOW;
  }

  #remember(window: Float32Array): void {
    if (this.#prefix === 0) return;
    this.#ring.set(window, this.#ringNext * SILERO_WINDOW);
    this.#ringNext = (this.#ringNext + 1) % this.#prefix;
    if (this.#ringCount < this.#prefix) this.#ringCount++;
  }
}
