import { describe, expect, it } from 'vitest';
import { AudioFormatError } from '../../src/errors.js';
import { Resampler, resampleAll } from '../../src/audio/resampler.js';
import { toneAmplitude } from './signal.js';

function sine(hz: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / rate);
  return out;
}

function rms(x: Float32Array): number {
  let sum = 0;
  for (const v of x) sum += v * v;
  return Math.sqrt(sum / x.length);
}

/** Streams `input` through a resampler in frames of `frameMs`. */
function streamed(input: Float32Array, from: number, to: number, frameMs = 20): Float32Array {
  const resampler = new Resampler(from, to);
  const step = Math.round((from * frameMs) / 1000);
  const parts: number[] = [];
  for (let i = 0; i < input.length; i += step) parts.push(...resampler.process(input.subarray(i, i + step)));
  parts.push(...resampler.flush());
  resampler.close();
  return Float32Array.from(parts);
}

const middle = (x: Float32Array, rate: number) => x.subarray(Math.round(rate * 0.1), x.length - Math.round(rate * 0.1));

describe('Resampler', () => {
  it('a 1 kHz sine through 48k → 16k keeps its amplitude (±0.1 dB), frequency and length', () => {
    const out = streamed(sine(1000, 48000, 1), 48000, 16000);
    expect(out.length).toBe(16000);
    const body = middle(out, 16000);
    expect(20 * Math.log10(toneAmplitude(body, 1000, 16000) / 0.5)).toBeCloseTo(0, 1);
    // Nearly all the energy is at 1 kHz: residual after removing the ideal sine is tiny.
    const ideal = sine(1000, 16000, 1);
    let err = 0;
    for (let i = 1600; i < 14400; i++) err = Math.max(err, Math.abs((out[i] as number) - (ideal[i] as number)));
    expect(err).toBeLessThan(1e-3);
  });

  it('a 10 kHz tone (above the 8 kHz output Nyquist) is attenuated by at least 60 dB instead of aliasing to 6 kHz', () => {
    const out = streamed(sine(10_000, 48000, 1), 48000, 16000);
    const body = middle(out, 16000);
    const aliasDb = 20 * Math.log10(toneAmplitude(body, 6000, 16000) / 0.5);
    const totalDb = 20 * Math.log10(rms(body) / rms(sine(10_000, 48000, 1)));
    expect(aliasDb).toBeLessThan(-60);
    expect(totalDb).toBeLessThan(-60);
  });

  it('naive decimation would alias: the test above can fail', () => {
    const input = sine(10_000, 48000, 1);
    const dropped = Float32Array.from({ length: 16000 }, (_, i) => input[i * 3] as number);
    expect(20 * Math.log10(toneAmplitude(middle(dropped, 16000), 6000, 16000) / 0.5)).toBeGreaterThan(-1);
  });

  for (const [from, to] of [
    [24000, 48000],
    [22050, 48000],
    [16000, 48000],
  ] as const) {
    it(`${from} → ${to} keeps a 440 Hz tone and the duration`, () => {
      const out = streamed(sine(440, from, 1), from, to);
      expect(out.length).toBe(to);
      expect(toneAmplitude(middle(out, to), 440, to)).toBeCloseTo(0.5, 2);
    });
  }

  it('streaming in 20 ms frames gives the same samples as one call', () => {
    const input = sine(700, 48000, 0.5);
    const whole = resampleAll(input, 48000, 16000);
    const pieces = streamed(input, 48000, 16000);
    expect(pieces.length).toBe(whole.length);
    let diff = 0;
    for (let i = 0; i < whole.length; i++) diff = Math.max(diff, Math.abs((whole[i] as number) - (pieces[i] as number)));
    expect(diff).toBeLessThan(1e-6);
  });

  it('same rate passes samples through; bad rates are AudioFormatErrors; close() is idempotent', () => {
    const same = new Resampler(16000, 16000);
    expect(Array.from(same.process(Float32Array.from([0.5, -0.5])))).toEqual([0.5, -0.5]);
    expect(() => new Resampler(0, 16000)).toThrow(AudioFormatError);
    expect(() => new Resampler(48000, 16000.5)).toThrow(AudioFormatError);
    const r = new Resampler(48000, 16000);
    r.close();
    r.close();
    expect(() => r.process(new Float32Array(10))).toThrow(AudioFormatError);
  });
});
