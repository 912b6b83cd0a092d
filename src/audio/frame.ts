/**
 * PCM frame types and the sample-level conversions everything else builds on.
 *
 * Conventions: Float32 samples are in [-1, 1]; Int16 samples are signed 16-bit little-endian PCM;
 * multi-channel audio is interleaved (L R L R ...). Functions that take an optional `out` write into
 * it (and return a view of the written part) so per-frame callers can reuse one buffer.
 */
import { AudioFormatError } from '../errors.js';

/** Sample rates voxstate accepts from transports and providers. */
export const SUPPORTED_SAMPLE_RATES = [8000, 12000, 16000, 22050, 24000, 32000, 44100, 48000] as const;
export type SupportedSampleRate = (typeof SUPPORTED_SAMPLE_RATES)[number];

/** The rate of VAD and STT input. */
export const VAD_SAMPLE_RATE = 16000;

export type ChannelCount = 1 | 2;

/** One block of PCM as it travels between transport, pipeline and codecs. */
export interface PcmFrame<T extends Int16Array | Float32Array = Int16Array | Float32Array> {
  /** Interleaved samples when `channels` is 2. */
  readonly samples: T;
  readonly sampleRate: number;
  readonly channels: ChannelCount;
}

/** Samples per channel in `durationMs` at `sampleRate` (20 ms at 48 kHz = 960). */
export function samplesPerFrame(sampleRate: number, durationMs: number): number {
  return Math.round((sampleRate * durationMs) / 1000);
}

export function assertSampleRate(sampleRate: number, allowed: readonly number[] = SUPPORTED_SAMPLE_RATES): void {
  if (!Number.isInteger(sampleRate) || !allowed.includes(sampleRate)) {
    throw new AudioFormatError(
      'audio_invalid_format',
      `unsupported sample rate ${String(sampleRate)} (expected one of ${allowed.join(', ')})`,
    );
  }
}

export function assertChannels(channels: number): asserts channels is ChannelCount {
  if (channels !== 1 && channels !== 2) {
    throw new AudioFormatError('audio_invalid_format', `unsupported channel count ${String(channels)} (expected 1 or 2)`);
  }
}

function ensureOut<T extends Int16Array | Float32Array>(
  out: T | undefined,
  length: number,
  make: (n: number) => T,
): T {
  if (out === undefined) return make(length);
  if (out.length < length) {
    throw new AudioFormatError('audio_invalid_format', `output buffer holds ${out.length} samples, ${length} needed`);
  }
  return out.subarray(0, length) as T;
}

/** Int16 PCM → Float32 in [-1, 1) (divides by 32768, the exact inverse of {@link float32ToInt16} for in-range values). */
export function int16ToFloat32(input: Int16Array, out?: Float32Array): Float32Array {
  const result = ensureOut(out, input.length, (n) => new Float32Array(n));
  for (let i = 0; i < input.length; i++) result[i] = (input[i] as number) / 32768;
  return result;
}

/**
 * Float32 → Int16 PCM (× 32768, so Int16 → Float32 → Int16 is lossless). Documented conversion for
 * bad samples: values beyond [-1, 1) are clamped to -32768..32767,
 * NaN becomes 0 (silence) and ±Infinity clamps to full scale. Never throws on sample values.
 */
export function float32ToInt16(input: Float32Array, out?: Int16Array): Int16Array {
  const result = ensureOut(out, input.length, (n) => new Int16Array(n));
  for (let i = 0; i < input.length; i++) {
    const v = input[i] as number;
    // NaN fails both comparisons and lands on 0 through `v === v`.
    const scaled = v === v ? Math.round(v * 32768) : 0;
    result[i] = scaled > 32767 ? 32767 : scaled < -32768 ? -32768 : scaled;
  }
  return result;
}

/**
 * Replaces NaN with 0 and clamps everything else (including ±Infinity) to [-1, 1], in place.
 * Returns how many samples were changed, so callers can log bad input without failing on it.
 */
export function sanitizeFloat32(samples: Float32Array): number {
  let fixed = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i] as number;
    if (v > 1) {
      samples[i] = 1;
      fixed++;
    } else if (v < -1) {
      samples[i] = -1;
      fixed++;
    } else if (v !== v) {
      samples[i] = 0;
      fixed++;
    }
  }
  return fixed;
}

/** Throws `audio_invalid_samples` on the first NaN or ±Infinity (the strict alternative to {@link sanitizeFloat32}). */
export function assertFiniteSamples(samples: Float32Array): void {
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) {
      throw new AudioFormatError('audio_invalid_samples', `sample ${i} is ${String(samples[i])}`);
    }
  }
}

/** Interleaved stereo → mono by averaging the two channels. Odd lengths are a format error. */
export function downmixStereo<T extends Int16Array | Float32Array>(interleaved: T, out?: T): T {
  if (interleaved.length % 2 !== 0) {
    throw new AudioFormatError(
      'audio_invalid_format',
      `interleaved stereo needs an even number of samples, got ${interleaved.length}`,
    );
  }
  const frames = interleaved.length / 2;
  const make = (n: number): T =>
    (interleaved instanceof Int16Array ? new Int16Array(n) : new Float32Array(n)) as T;
  const result = ensureOut(out, frames, make);
  const round = interleaved instanceof Int16Array;
  for (let i = 0, j = 0; i < frames; i++, j += 2) {
    const mean = ((interleaved[j] as number) + (interleaved[j + 1] as number)) / 2;
    result[i] = round ? Math.round(mean) : mean;
  }
  return result;
}

/**
 * Little-endian PCM16 bytes (as received from a socket) → Int16Array. Copies when the bytes are not
 * 2-byte aligned in their buffer. An odd byte length is a format error, never a silent truncation.
 */
export function bytesToInt16(bytes: Uint8Array): Int16Array {
  if (bytes.byteLength % 2 !== 0) {
    throw new AudioFormatError('audio_invalid_format', `PCM16 needs an even number of bytes, got ${bytes.byteLength}`);
  }
  if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Int16Array(copy.buffer);
}

/** Int16Array → its little-endian bytes (a view, no copy). */
export function int16ToBytes(samples: Int16Array): Uint8Array {
  return new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
}

/** Duration in ms of `sampleCount` mono samples (or per-channel frames) at `sampleRate`. */
export function durationMs(sampleCount: number, sampleRate: number): number {
  return (sampleCount * 1000) / sampleRate;
}

type SampleArray = Uint8Array | Int16Array | Float32Array;

/**
 * The parts one after another in one array of their own type; a single part is returned as it is
 * (no copy). `empty` is what no parts give.
 */
export function concatArrays<T extends SampleArray>(parts: readonly T[], empty: T): T {
  if (parts.length === 0) return empty;
  if (parts.length === 1) return parts[0] as T;
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new (parts[0]?.constructor as new (length: number) => T)(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part as never, offset);
    offset += part.length;
  }
  return out;
}
