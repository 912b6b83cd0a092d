/**
 * Test audio made on the spot: English speech from the built-in Flite voice, and cough-like noise
 * bursts, both as 16 kHz mono Float32 (the VAD's input). Speech is cached per voice and text for the
 * life of the test file; call {@link closeSpeech} in afterAll (Flite runs in worker threads).
 */
import { int16ToFloat32 } from '../../src/audio/frame.js';
import { resampleAll } from '../../src/audio/resampler.js';
import { FliteTts, type FliteVoice } from '../../src/providers/local/flite-tts.js';

export const SPEECH_SAMPLE_RATE = 16000;

const voices = new Map<FliteVoice, FliteTts>();
const cache = new Map<string, Promise<Float32Array>>();

/** `text` spoken by Flite (`slt` unless told), as 16 kHz mono samples in [-1, 1). Sentences are joined back to back. */
export function speech(text: string, voice: FliteVoice = 'slt'): Promise<Float32Array> {
  const key = `${voice}\0${text}`;
  let clip = cache.get(key);
  if (clip === undefined) {
    clip = synthesize(text, voice);
    cache.set(key, clip);
    clip.catch(() => cache.delete(key));
  }
  return clip;
}

async function synthesize(text: string, voice: FliteVoice): Promise<Float32Array> {
  let tts = voices.get(voice);
  if (tts === undefined) {
    tts = new FliteTts({ voice });
    voices.set(voice, tts);
  }
  const parts: Float32Array[] = [];
  for await (const chunk of tts.synthesize(text, { signal: new AbortController().signal })) {
    const samples = int16ToFloat32(chunk.pcm);
    // Each chunk is one sentence, a signal of its own: resampled whole, tail included.
    parts.push(chunk.sampleRate === SPEECH_SAMPLE_RATE ? samples : resampleAll(samples, chunk.sampleRate, SPEECH_SAMPLE_RATE));
  }
  return concat(parts);
}

/** Stops the Flite workers and forgets the cached clips. */
export async function closeSpeech(): Promise<void> {
  const all = [...voices.values()];
  voices.clear();
  cache.clear();
  await Promise.all(all.map((tts) => tts.close()));
}

/**
 * A cough-like burst of `ms` at 16 kHz: noise from a seeded PRNG (mulberry32), band-limited to
 * roughly 300 Hz – 3 kHz by two one-pole filters, with a 5 ms attack and an exponential decay (time
 * constant a fifth of the burst), peak `peak`. The same seed gives the same samples.
 */
export function noiseBurst(ms: number, seed: number, peak = 0.5): Float32Array {
  const n = Math.round((ms * SPEECH_SAMPLE_RATE) / 1000);
  const out = new Float32Array(n);
  const random = mulberry32(seed);
  const rate = SPEECH_SAMPLE_RATE;
  const lowAlpha = 1 - Math.exp((-2 * Math.PI * 3000) / rate); // low-pass at ~3 kHz
  const highAlpha = Math.exp((-2 * Math.PI * 300) / rate); // high-pass at ~300 Hz
  const attack = Math.max(1, Math.round(0.005 * rate));
  const decay = Math.max(1, n / 5);
  let low = 0;
  let highIn = 0;
  let highOut = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const white = random() * 2 - 1;
    low += lowAlpha * (white - low);
    highOut = highAlpha * (highOut + low - highIn);
    highIn = low;
    const envelope = i < attack ? i / attack : Math.exp(-(i - attack) / decay);
    out[i] = highOut * envelope;
    max = Math.max(max, Math.abs(out[i]!));
  }
  if (max > 0) for (let i = 0; i < n; i++) out[i] = (out[i]! * peak) / max;
  return out;
}

/** `ms` of digital silence at 16 kHz. */
export function silence(ms: number): Float32Array {
  return new Float32Array(Math.round((ms * SPEECH_SAMPLE_RATE) / 1000));
}

/** The arrays one after the other. */
export function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
