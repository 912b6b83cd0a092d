/**
 * Inbound pipeline: transport frames (PCM16 or Float32, 16/24/48 kHz, mono or interleaved stereo)
 * → mono 16 kHz Float32 for VAD and STT. One pipeline per stream: the resampler keeps filter state
 * between frames.
 *
 * Bad input: a wrong sample type or an odd stereo length throws `audio_invalid_format`; NaN samples
 * become 0 and values beyond ±1 (including ±Infinity) are clamped — a documented conversion, counted
 * in {@link InboundPipeline.sanitizedSamples}, so one bad client frame never breaks the stream.
 */
import { AudioFormatError } from '../errors.js';
import {
  assertChannels,
  assertSampleRate,
  bytesToInt16,
  sanitizeFloat32,
  VAD_SAMPLE_RATE,
  type ChannelCount,
} from './frame.js';
import { Resampler, type ResamplerOptions } from './resampler.js';

export const INBOUND_SAMPLE_RATES = [16000, 24000, 48000] as const;
export type InboundSampleRate = (typeof INBOUND_SAMPLE_RATES)[number];

export interface InboundPipelineOptions {
  /** Rate of the frames the transport delivers. */
  readonly sampleRate: number;
  /** 2 = interleaved stereo, down-mixed by averaging. Default 1. */
  readonly channels?: number;
  /** Output rate; default 16 000 (the VAD/STT rate). */
  readonly outputRate?: number;
  readonly resampler?: ResamplerOptions;
}

export class InboundPipeline {
  readonly inputRate: InboundSampleRate;
  readonly channels: ChannelCount;
  readonly outputRate: number;
  readonly #resampler: Resampler;
  #mono = new Float32Array(0);
  #sanitized = 0;
  #closed = false;

  constructor(options: InboundPipelineOptions) {
    assertSampleRate(options.sampleRate, INBOUND_SAMPLE_RATES);
    const channels = options.channels ?? 1;
    assertChannels(channels);
    this.inputRate = options.sampleRate as InboundSampleRate;
    this.channels = channels;
    this.outputRate = options.outputRate ?? VAD_SAMPLE_RATE;
    this.#resampler = new Resampler(this.inputRate, this.outputRate, options.resampler);
  }

  /** Samples replaced by the NaN/clamp rule so far (for metrics and logs). */
  get sanitizedSamples(): number {
    return this.#sanitized;
  }

  /**
   * Converts one transport frame. `frame` may be PCM16 samples, PCM16 little-endian bytes (Uint8Array
   * or Buffer) or Float32 samples. Returns a view into an internal buffer, valid until the next call.
   */
  push(frame: Int16Array | Float32Array | Uint8Array): Float32Array {
    if (this.#closed) throw new AudioFormatError('audio_invalid_format', 'inbound pipeline is closed');
    const samples =
      frame instanceof Int16Array || frame instanceof Float32Array
        ? frame
        : frame instanceof Uint8Array
          ? bytesToInt16(frame)
          : undefined;
    if (samples === undefined) {
      throw new AudioFormatError('audio_invalid_format', 'expected Int16Array, Float32Array or PCM16 bytes');
    }
    if (samples.length % this.channels !== 0) {
      throw new AudioFormatError(
        'audio_invalid_format',
        `interleaved stereo needs an even number of samples, got ${samples.length}`,
      );
    }
    const frames = samples.length / this.channels;
    if (this.#mono.length < frames) this.#mono = new Float32Array(Math.max(frames, this.#mono.length * 2));
    const mono = this.#mono.subarray(0, frames);
    if (this.channels === 1) {
      if (samples instanceof Int16Array) for (let i = 0; i < frames; i++) mono[i] = (samples[i] as number) / 32768;
      else mono.set(samples);
    } else {
      const scale = samples instanceof Int16Array ? 1 / 65536 : 0.5;
      for (let i = 0, j = 0; i < frames; i++, j += 2) {
        mono[i] = ((samples[j] as number) + (samples[j + 1] as number)) * scale;
      }
    }
    if (samples instanceof Float32Array) this.#sanitized += sanitizeFloat32(mono);
    return this.#resampler.process(mono);
  }

  /** The samples the resampler still holds at the end of the stream. */
  flush(): Float32Array {
    if (this.#closed) return new Float32Array(0);
    return this.#resampler.flush();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resampler.close();
  }
}
