/**
 * Turns a sequence of per-window speech probabilities (Silero, 32 ms windows) into turns, and keeps
 * the audio of each turn. Pure: no model, no timers — time is the window index, so `atMs` values are
 * positions in the audio stream, not wall-clock. Events are sent on changes only, never per window.
 *
 *   silence ──p ≥ threshold──▶ pending                                                  ⇒ vad.onset
 *   pending ──p < negativeThreshold (before minSpeech)──▶ silence                       ⇒ vad.onsetCancelled
 *   pending ──(minSpeech of p ≥ negativeThreshold)──▶ speech                            ⇒ vad.speechStart
 *   speech ──(pause of consecutive p < negativeThreshold)──▶ speech (paused)            ⇒ vad.speechPause
 *   speech (paused) ──p ≥ negativeThreshold──▶ speech                                   ⇒ vad.speechResume
 *   speech ──(minSilence of consecutive p < negativeThreshold)──▶ silence               ⇒ vad.speechEnd
 *   speech ──(maxSpeech since the onset)──▶ silence                                     ⇒ vad.speechEnd
 *   speech ──voiced time reaches a mark of voicedMarksMs (once per mark and utterance)  ⇒ vad.voiced
 *
 * Voiced time (`voicedMs`) counts the windows of the utterance with p ≥ negativeThreshold, from the
 * onset window on (the pending ones included) × 32 ms; windows of pauses do not count. Within one
 * window the order is: onset, speechStart, speechResume, voiced, speechPause, speechEnd.
 *
 * `vad.onset.atMs` and `vad.speechStart.atMs` are the start of the first window with p ≥ threshold.
 * `vad.speechPause.atMs` and `vad.speechEnd.atMs` are the END OF THE LAST VOICED WINDOW (the events
 * are emitted pause / minSilence later, when the silence is known); `vad.speechResume.atMs` is the
 * start of the window that resumes, `vad.onsetCancelled.atMs` and `vad.voiced.atMs` the end of the
 * window that decided them. The utterance audio runs from `prefixPaddingMs` before the onset to
 * `vad.speechEnd.atMs`.
 */
import { ConfigError } from '../errors.js';
import type { VadConfig } from './config.js';
import { msToWindows } from './config.js';
import { SILERO_SAMPLE_RATE, SILERO_WINDOW, VAD_FRAME_MS } from './model.js';

export interface VadAudio {
  readonly samples: Float32Array;
  readonly sampleRate: 16000;
}

/** Provisional onset: the first window with p ≥ threshold while silent (atMs = its start). */
export interface VadOnsetEvent {
  readonly type: 'vad.onset';
  readonly atMs: number;
}

/** The provisional onset was not confirmed; atMs = end of the window that decided it. */
export interface VadOnsetCancelledEvent {
  readonly type: 'vad.onsetCancelled';
  readonly atMs: number;
}

/** Confirmed onset after minSpeechMs; atMs = start of the onset window. */
export interface VadSpeechStartEvent {
  readonly type: 'vad.speechStart';
  readonly atMs: number;
  readonly voicedMs: number;
}

/** pauseMs of silence inside speech (shorter than minSilenceMs); atMs = end of the last voiced window. */
export interface VadSpeechPauseEvent {
  readonly type: 'vad.speechPause';
  readonly atMs: number;
  readonly voicedMs: number;
  /** Silence from atMs to the window that decided the pause (pauseMs, whole windows): the event's own audio time is atMs + silenceMs. */
  readonly silenceMs: number;
}

/** A voiced window after a speechPause, before the utterance ended; atMs = its start. */
export interface VadSpeechResumeEvent {
  readonly type: 'vad.speechResume';
  readonly atMs: number;
  readonly voicedMs: number;
}

/** The utterance's voiced time reached a mark of `voicedMarksMs`; atMs = end of the window that reached it. */
export interface VadVoicedEvent {
  readonly type: 'vad.voiced';
  readonly atMs: number;
  readonly voicedMs: number;
}

/** End of turn (minSilenceMs of silence, or maxSpeechMs); atMs = end of the last voiced window. */
export interface VadSpeechEndEvent {
  readonly type: 'vad.speechEnd';
  readonly atMs: number;
  readonly durationMs: number;
  readonly voicedMs: number;
  /** Silence from atMs to the window that decided the end (minSilenceMs; 0 at maxSpeechMs): the event's own audio time is atMs + silenceMs. */
  readonly silenceMs: number;
  readonly audio: VadAudio;
}

export type VadSpeechEvent =
  | VadOnsetEvent
  | VadOnsetCancelledEvent
  | VadSpeechStartEvent
  | VadSpeechPauseEvent
  | VadSpeechResumeEvent
  | VadVoicedEvent
  | VadSpeechEndEvent;

/** `paused`: confirmed speech in a silence of pauseMs or more (shorter than minSilenceMs so far). */
type Phase = 'silence' | 'pending' | 'speech' | 'paused';

/**
 * The marks as sorted, distinct voiced-window counts: voicedMs ≥ mark ⇔ windows ≥ ceil(mark / 32).
 * Marks of 0 or below count as reached at speechStart. Throws ConfigError for a mark that is NaN.
 */
export function voicedMarkWindows(voicedMarksMs: readonly number[] = []): Int32Array {
  const windows: number[] = [];
  for (const mark of voicedMarksMs) {
    if (typeof mark !== 'number' || Number.isNaN(mark)) {
      throw new ConfigError('vad.voicedMarksMs', `marks must be numbers of ms, got ${String(mark)}`);
    }
    if (mark === Number.POSITIVE_INFINITY) continue; // never reached
    windows.push(msToWindows(mark));
  }
  return Int32Array.from(new Set(windows)).sort();
}

export class SpeechDetector {
  readonly config: VadConfig;
  readonly #emit: (event: VadSpeechEvent) => void;
  readonly #minSpeech: number;
  readonly #minSilence: number;
  readonly #pause: number;
  readonly #maxSpeech: number;
  readonly #prefix: number;
  readonly #marks: Int32Array;
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
  /** Window after the last voiced window of the previous utterance. */
  #previousEnd = 0;
  #voiced = 0;
  #nextMark = 0;

  /**
   * @param voicedMarksMs voiced durations (ms) at which to send `vad.voiced`, each at most once per
   *   utterance and never before `vad.speechStart`. Marks reached by the same window share one event.
   */
  constructor(config: VadConfig, emit: (event: VadSpeechEvent) => void, voicedMarksMs: readonly number[] = []) {
    this.config = config;
    this.#emit = emit;
    this.#minSpeech = msToWindows(config.minSpeechMs, 1);
    this.#minSilence = msToWindows(config.minSilenceMs, 1);
    this.#pause = msToWindows(config.pauseMs, 1);
    this.#maxSpeech = msToWindows(config.maxSpeechMs, 1);
    this.#prefix = msToWindows(config.prefixPaddingMs);
    this.#marks = voicedMarkWindows(voicedMarksMs);
    this.#ring = new Float32Array(this.#prefix * SILERO_WINDOW);
  }

  /** True between `vad.onset` and its confirmation or cancellation. */
  get pending(): boolean {
    return this.#phase === 'pending';
  }

  /** True between `vad.speechStart` and `vad.speechEnd`. */
  get speaking(): boolean {
    return this.#phase === 'speech' || this.#phase === 'paused';
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
          this.#voiced = 1;
          this.#beginUtterance(k);
          this.#append(window);
          this.#emit({ type: 'vad.onset', atMs: k * VAD_FRAME_MS });
          if (this.#minSpeech <= 1) this.#confirm(k);
        }
        break;
      case 'pending':
        if (probability >= negativeThreshold) {
          this.#append(window);
          this.#voiced++;
          if (k - this.#onset + 1 >= this.#minSpeech) this.#confirm(k);
        } else {
          this.#phase = 'silence';
          this.#uttLength = 0;
          this.#emit({ type: 'vad.onsetCancelled', atMs: (k + 1) * VAD_FRAME_MS });
        }
        break;
      case 'speech':
      case 'paused':
        this.#append(window);
        if (probability >= negativeThreshold) {
          this.#silenceRun = 0;
          this.#lastSpeech = k;
          this.#voiced++;
          if (this.#phase === 'paused') {
            this.#phase = 'speech';
            this.#emit({ type: 'vad.speechResume', atMs: k * VAD_FRAME_MS, voicedMs: this.#voiced * VAD_FRAME_MS });
          }
          this.#checkMarks(k);
          if (k - this.#onset + 1 >= this.#maxSpeech) this.#end();
        } else {
          const run = ++this.#silenceRun;
          if (run === this.#pause) {
            this.#phase = 'paused';
            this.#emit({
              type: 'vad.speechPause',
              atMs: (this.#lastSpeech + 1) * VAD_FRAME_MS,
              voicedMs: this.#voiced * VAD_FRAME_MS,
              silenceMs: run * VAD_FRAME_MS,
            });
          }
          if (run >= this.#minSilence) this.#end();
        }
        break;
    }
    this.#remember(window);
  }

  /**
   * End of stream: closes an open turn at its last voiced window (`vad.speechEnd`); a pending onset
   * is dropped (`vad.onsetCancelled` at the end of the stream).
   */
  flush(): void {
    if (this.speaking) this.#end();
    else if (this.#phase === 'pending') {
      this.#phase = 'silence';
      this.#emit({ type: 'vad.onsetCancelled', atMs: this.#index * VAD_FRAME_MS });
    }
    this.#phase = 'silence';
    this.#uttLength = 0;
  }

  /** Back to the start of a stream (position 0, no history, no events for an open turn). */
  reset(): void {
    this.#phase = 'silence';
    this.#uttLength = 0;
    this.#ringCount = 0;
    this.#ringNext = 0;
    this.#index = 0;
    this.#previousEnd = 0;
  }

  #confirm(k: number): void {
    this.#phase = 'speech';
    this.#lastSpeech = k;
    this.#silenceRun = 0;
    this.#nextMark = 0;
    this.#emit({ type: 'vad.speechStart', atMs: this.#onset * VAD_FRAME_MS, voicedMs: this.#voiced * VAD_FRAME_MS });
    this.#checkMarks(k);
  }

  /** Sends one `vad.voiced` when window k made the voiced time reach the next mark(s). */
  #checkMarks(k: number): void {
    const marks = this.#marks;
    let next = this.#nextMark;
    if (next >= marks.length || this.#voiced < marks[next]!) return;
    while (next < marks.length && this.#voiced >= marks[next]!) next++;
    this.#nextMark = next;
    this.#emit({ type: 'vad.voiced', atMs: (k + 1) * VAD_FRAME_MS, voicedMs: this.#voiced * VAD_FRAME_MS });
  }

  #end(): void {
    const startMs = this.#onset * VAD_FRAME_MS;
    const endMs = (this.#lastSpeech + 1) * VAD_FRAME_MS;
    const samples = this.#utt.slice(0, (this.#lastSpeech + 1 - this.#uttStart) * SILERO_WINDOW);
    this.#previousEnd = this.#lastSpeech + 1;
    this.#phase = 'silence';
    this.#uttLength = 0;
    this.#emit({
      type: 'vad.speechEnd',
      atMs: endMs,
      durationMs: endMs - startMs,
      voicedMs: this.#voiced * VAD_FRAME_MS,
      silenceMs: Math.max(0, this.#index - (this.#lastSpeech + 1)) * VAD_FRAME_MS,
      audio: { samples, sampleRate: SILERO_SAMPLE_RATE },
    });
  }
  /** Starts the utterance buffer with the padding windows before window k. */
  #beginUtterance(k: number): void {
    this.#uttLength = 0;
    // The padding never reaches back into the previous utterance (its audio was already handed on).
    const count = Math.min(this.#ringCount, k - this.#previousEnd);
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
