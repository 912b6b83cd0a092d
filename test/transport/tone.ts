/** Test helpers: a sine tone in 20 ms frames and a single-frequency amplitude estimate. */

export function toneFrames(frequency: number, amplitude: number, frames: number, sampleRate = 48_000): Int16Array[] {
  const frameSamples = sampleRate / 50;
  return Array.from({ length: frames }, (_, f) =>
    Int16Array.from({ length: frameSamples }, (_, i) =>
      Math.round(amplitude * Math.sin((2 * Math.PI * frequency * (f * frameSamples + i)) / sampleRate)),
    ),
  );
}

export function concat(frames: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(frames.reduce((sum, frame) => sum + frame.length, 0));
  let offset = 0;
  for (const frame of frames) {
    out.set(frame, offset);
    offset += frame.length;
  }
  return out;
}

/** Amplitude of the `frequency` component of `pcm` (a pure sine of amplitude A gives ≈ A). */
export function amplitudeAt(pcm: Int16Array, frequency: number, sampleRate = 48_000): number {
  let re = 0;
  let im = 0;
  for (let n = 0; n < pcm.length; n++) {
    const phase = (2 * Math.PI * frequency * n) / sampleRate;
    const x = pcm[n] ?? 0;
    re += x * Math.cos(phase);
    im -= x * Math.sin(phase);
  }
  return (2 / pcm.length) * Math.hypot(re, im);
}

export function rms(pcm: Int16Array): number {
  let sum = 0;
  for (const x of pcm) sum += x * x;
  return Math.sqrt(sum / Math.max(1, pcm.length));
}
