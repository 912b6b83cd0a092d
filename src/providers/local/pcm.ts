/**
 * PCM and WAV helpers for the providers (OpenAI uploads WAV, Google and Flite return WAV, ffmpeg
 * reads WAV from stdin): thin adapters over src/audio that report bad provider audio as
 * `ProviderError('provider_bad_response')`.
 */
import { AudioFormatError, ProviderError } from '../../errors.js';
import { downmixStereo, float32ToInt16 } from '../../audio/frame.js';
import { readWav, writeWav } from '../../audio/wav.js';

/** A canonical 44-byte-header RIFF/WAVE file holding mono PCM16. */
export function encodeWav(pcm: Int16Array, sampleRate: number): Uint8Array {
  return writeWav(pcm, sampleRate, 1);
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
  if (!isWav(bytes)) throw new ProviderError('provider_bad_response', provider, 'invalid WAV audio: no RIFF/WAVE header');
  try {
    const wav = readWav(bytes);
    const mono = wav.channels === 1 ? wav.samples : downmixStereo(wav.samples);
    return { pcm: float32ToInt16(mono), sampleRate: wav.sampleRate, channels: wav.channels };
  } catch (error) {
    if (error instanceof AudioFormatError) {
      throw new ProviderError('provider_bad_response', provider, `invalid WAV audio: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function ascii4(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset] ?? 0, bytes[offset + 1] ?? 0, bytes[offset + 2] ?? 0, bytes[offset + 3] ?? 0);
}

/** Splits `pcm` into slices of at most `samplesPerChunk` (views, no copies). */
export function* slicePcm(pcm: Int16Array, samplesPerChunk: number): Generator<Int16Array> {
  const step = Math.max(1, Math.floor(samplesPerChunk));
  for (let i = 0; i < pcm.length; i += step) yield pcm.subarray(i, Math.min(pcm.length, i + step));
}
