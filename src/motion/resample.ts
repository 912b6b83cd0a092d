/**
 * PCM16 stream resampling for the Motion link: agent speech arrives at the TTS provider's true rate
 * and goes to the Motion Server at the configured one. Uses src/audio's streaming Resampler
 * (SpeexDSP windowed-sinc polyphase, state kept across chunks, time-aligned output).
 */
import { float32ToInt16, int16ToFloat32 } from '../audio/frame.js';
import { Resampler } from '../audio/resampler.js';

export class PcmStreamResampler {
  readonly outputRate: number;
  #resampler: Resampler | undefined;

  constructor(outputRate: number) {
    this.outputRate = outputRate;
  }

  /** Resamples the next piece of one reply; a different input rate starts a new filter. */
  push(pcm: Int16Array, inputRate: number): Int16Array {
    if (inputRate === this.outputRate) return pcm;
    if (this.#resampler?.inputRate !== inputRate) {
      this.#resampler?.close();
      this.#resampler = new Resampler(inputRate, this.outputRate);
    }
    return float32ToInt16(this.#resampler.process(int16ToFloat32(pcm)));
  }

  /** The tail the filter still holds; call at the end of a reply. The next reply starts clean. */
  flush(): Int16Array {
    const resampler = this.#resampler;
    if (resampler === undefined) return new Int16Array(0);
    return float32ToInt16(resampler.flush());
  }

  /** Drops the filter history (after an interrupt). */
  reset(): void {
    this.#resampler?.reset();
  }

  close(): void {
    this.#resampler?.close();
    this.#resampler = undefined;
  }
}
