import { AudioFormatError } from '../errors.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies little-endian PCM16 bytes into a fresh, aligned Int16Array.
 * Throws AudioFormatError on an odd byte count (a torn sample).
 */
export function pcm16FromBytes(bytes: Uint8Array): Int16Array {
  if (bytes.byteLength % 2 !== 0) {
    throw new AudioFormatError('audio_invalid_format', `PCM16 frame has an odd byte length (${bytes.byteLength})`);
  }
  const samples = new Int16Array(bytes.byteLength / 2);
  if (LITTLE_ENDIAN) {
    new Uint8Array(samples.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true);
  }
  return samples;
}

/** Copies samples into a fresh little-endian byte buffer (safe to queue: the caller may reuse `pcm`). */
export function pcm16ToBytes(pcm: Int16Array): Buffer {
  const bytes = Buffer.allocUnsafe(pcm.byteLength);
  if (LITTLE_ENDIAN) {
    bytes.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  } else {
    for (let i = 0; i < pcm.length; i++) bytes.writeInt16LE(pcm[i] ?? 0, i * 2);
  }
  return bytes;
}
