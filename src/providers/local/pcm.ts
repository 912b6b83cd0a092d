/**
 * PCM and WAV codecs shared by the providers (OpenAI uploads WAV, Google and Flite return WAV,
 * ffmpeg reads WAV from stdin). Pure functions: bytes in, samples out. They live in local/ because
 * that folder is the dependency-free built-in every other provider may import from.
 */
import { ProviderError } from '../../errors.js';

/** Float32 in [-1, 1] to PCM16, clipping anything outside the range. */
export function floatToInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] ?? 0));
    out[i] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff);
  }
  return out;
}

/** PCM16 to Float32 in [-1, 1]. */
export function int16ToFloat(samples: Int16Array): Float32Array {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = (samples[i] ?? 0) / 0x8000;
  return out;
}

/** A little-endian PCM16 byte view of `pcm` (no copy on little-endian hosts, which Node always is). */
export function int16ToBytes(pcm: Int16Array): Uint8Array {
  return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

/** Copies little-endian PCM16 bytes into an Int16Array; `bytes.length` must be even. */
export function bytesToInt16(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length >> 1);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 2));
  return out;
}

/** A canonical 44-byte-header RIFF/WAVE file holding mono PCM16. */
export function encodeWav(pcm: Int16Array, sampleRate: number): Uint8Array {
  const dataBytes = pcm.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const ascii = (offset: number, text: string): void => {
    for (let i = 0; i < text.length; i++) out[offset + i] = text.charCodeAt(i);
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // byte rate
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  out.set(int16ToBytes(pcm), 44);
  return out;
}

export interface DecodedWav {
  readonly pcm: Int16Array;
  readonly sampleRate: number;
  readonly channels: number;
}

/** True when `bytes` start with a RIFF/WAVE header. */
export function isWav(bytes: Uint8Array): boolean {
  return bytes.length >= 12 && ascii4(bytes, 0) === 'RIFF' && ascii4(bytes, 8) === 'WAVE';
}

/**
 * Decodes a PCM16 WAV file, walking the chunks (so LIST/fact chunks before `data` are fine).
 * Multi-channel audio is down-mixed to mono. Throws `provider_bad_response` for anything else,
 * because every caller decodes audio a provider sent.
 */
export function decodeWav(bytes: Uint8Array, provider: 'stt' | 'tts' = 'tts'): DecodedWav {
  const bad = (why: string): ProviderError => new ProviderError('provider_bad_response', provider, `invalid WAV audio: ${why}`);
  if (!isWav(bytes)) throw bad('no RIFF/WAVE header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 12;
  let sampleRate = 0;
  let channels = 0;
  let bits = 0;
  while (offset + 8 <= bytes.length) {
    const id = ascii4(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw bad('truncated fmt chunk');
      const format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
      if (format !== 1 && format !== 0xfffe) throw bad(`unsupported format tag ${format}`);
      if (bits !== 16) throw bad(`unsupported ${bits}-bit samples`);
      if (channels < 1 || sampleRate < 1) throw bad('zero channels or sample rate');
    } else if (id === 'data') {
      if (sampleRate === 0) throw bad('data chunk before fmt chunk');
      // Streaming writers put 0 or 0xffffffff in the size; take what is there.
      const end = size === 0 || size === 0xffffffff ? bytes.length : Math.min(bytes.length, body + size);
      const frames = Math.floor((end - body) / (2 * channels));
      const interleaved = bytesToInt16(bytes.subarray(body, body + frames * 2 * channels));
      return { pcm: channels === 1 ? interleaved : downmix(interleaved, channels), sampleRate, channels };
    }
    offset = body + size + (size & 1);
  }
  throw bad('no data chunk');
}

function downmix(interleaved: Int16Array, channels: number): Int16Array {
  const frames = Math.floor(interleaved.length / channels);
  const out = new Int16Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[f * channels + c] ?? 0;
    out[f] = Math.round(sum / channels);
  }
  return out;
}

function ascii4(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset] ?? 0, bytes[offset + 1] ?? 0, bytes[offset + 2] ?? 0, bytes[offset + 3] ?? 0);
}

/** Splits `pcm` into slices of at most `samplesPerChunk` (views, no copies). */
export function* slicePcm(pcm: Int16Array, samplesPerChunk: number): Generator<Int16Array> {
  const step = Math.max(1, Math.floor(samplesPerChunk));
  for (let i = 0; i < pcm.length; i += step) yield pcm.subarray(i, Math.min(pcm.length, i + step));
}
