/**
 * WAV (RIFF/WAVE) codec: pure bytes in, samples out and back. Reads PCM 8/16/24/32-bit integer and
 * 32/64-bit float, including WAVE_FORMAT_EXTENSIBLE; writes PCM16.
 */
import { AudioFormatError } from '../errors.js';
import { assertChannels, float32ToInt16, type ChannelCount } from './frame.js';

export interface WavAudio {
  readonly sampleRate: number;
  readonly channels: ChannelCount;
  /** Interleaved Float32 samples in [-1, 1]. */
  readonly samples: Float32Array;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

function fail(message: string): never {
  throw new AudioFormatError('audio_invalid_format', `WAV: ${message}`);
}

function tag(view: DataView, offset: number): string {
  return String.fromCharCode(view.getUint8(offset), view.getUint8(offset + 1), view.getUint8(offset + 2), view.getUint8(offset + 3));
}

export function readWav(bytes: Uint8Array): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12 || tag(view, 0) !== 'RIFF' || tag(view, 8) !== 'WAVE') fail('not a RIFF/WAVE file');
  let format = -1;
  let channels = 0;
  let sampleRate = 0;
  let bits = 0;
  let data: { offset: number; length: number } | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.byteLength) {
    const id = tag(view, offset);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > bytes.byteLength) fail('truncated fmt chunk');
      format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      sampleRate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
      if (format === EXTENSIBLE) {
        if (size < 40) fail('truncated WAVE_FORMAT_EXTENSIBLE header');
        format = view.getUint16(body + 24, true);
      }
    } else if (id === 'data') {
      // Streams written before their length was known claim 0, 0xffffffff or more than the file holds.
      data = { offset: body, length: size === 0 ? bytes.byteLength - body : Math.min(size, bytes.byteLength - body) };
      break;
    }
    offset = body + size + (size % 2);
  }
  if (format === -1) fail('no fmt chunk');
  if (data === undefined) fail('no data chunk');
  if (channels !== 1 && channels !== 2) fail(`${channels} channels (only mono and stereo are supported)`);
  assertChannels(channels);
  if (sampleRate < 1000 || sampleRate > 384_000) fail(`sample rate ${sampleRate}`);

  const bytesPerSample = bits / 8;
  const supported =
    (format === PCM && (bits === 8 || bits === 16 || bits === 24 || bits === 32)) ||
    (format === IEEE_FLOAT && (bits === 32 || bits === 64));
  if (!supported) fail(`unsupported encoding (format ${format}, ${bits} bits)`);
  const count = Math.floor(data.length / bytesPerSample / channels) * channels;
  const samples = new Float32Array(count);
  let p = data.offset;
  for (let i = 0; i < count; i++, p += bytesPerSample) {
    let v: number;
    if (format === IEEE_FLOAT) v = bits === 32 ? view.getFloat32(p, true) : view.getFloat64(p, true);
    else if (bits === 16) v = view.getInt16(p, true) / 32768;
    else if (bits === 8) v = (view.getUint8(p) - 128) / 128;
    else if (bits === 24) v = ((view.getUint8(p) | (view.getUint8(p + 1) << 8) | (view.getInt8(p + 2) << 16)) / 8388608);
    else v = view.getInt32(p, true) / 2147483648;
    samples[i] = v;
  }
  return { sampleRate, channels, samples };
}

/** Encodes interleaved samples as a PCM16 WAV file. Float input is clamped (NaN → 0), see float32ToInt16. */
export function writeWav(samples: Float32Array | Int16Array, sampleRate: number, channels: ChannelCount = 1): Uint8Array {
  assertChannels(channels);
  if (!Number.isInteger(sampleRate) || sampleRate < 1000) fail(`sample rate ${String(sampleRate)}`);
  if (samples.length % channels !== 0) fail(`${samples.length} samples do not split into ${channels} channels`);
  const pcm = samples instanceof Int16Array ? samples : float32ToInt16(samples);
  const dataBytes = pcm.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const ascii = (offset: number, text: string): void => {
    for (let i = 0; i < 4; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, PCM, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * 2, true);
  view.setUint16(32, channels * 2, true);
  view.setUint16(34, 16, true);
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < pcm.length; i++) view.setInt16(44 + i * 2, pcm[i] as number, true);
  return out;
}
