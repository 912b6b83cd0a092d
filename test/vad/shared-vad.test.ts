import { afterAll, describe, expect, it } from 'vitest';
import { VadError } from '../../src/errors.js';
import { loadSileroModel, SILERO_CONTEXT, SILERO_INPUT, type VadModel } from '../../src/vad/model.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import { loadFixture } from './helpers.js';

const FILES = ['hello.16k.wav', 'booking.16k.wav', 'noise.16k.wav', 'stop.16k.wav', 'digits.16k.wav'];
const WINDOWS = 60; // ~1.9 s per stream keeps the test fast
const model = await loadSileroModel();
afterAll(() => model.close());

/** A SharedVad that never closes the model it borrows. */
function borrow(wrapped: VadModel): SharedVad {
  return new SharedVad({ model: { run: (i, s, n) => wrapped.run(i, s, n), close: async () => {} } });
}

function windowsOf(file: string): Float32Array[] {
  const samples = loadFixture(file).samples;
  return Array.from({ length: WINDOWS }, (_, k) => samples.subarray(k * 512, (k + 1) * 512));
}

/** One window at a time, awaited: every inference has batch size 1. */
async function unbatched(windows: Float32Array[]): Promise<number[]> {
  const vad = borrow(model);
  const stream = vad.openStream();
  const out: number[] = [];
  for (const w of windows) out.push(await stream.infer(w));
  await vad.close();
  expect(vad.stats.largestBatch).toBe(1);
  return out;
}

describe('SharedVad', () => {
  it('batched inference across streams equals unbatched inference within 1e-5', async () => {
    const inputs = FILES.map(windowsOf);
    const reference = await Promise.all(inputs.map(unbatched));
    const vad = borrow(model);
    const streams = inputs.map(() => vad.openStream());
    const results: number[][] = inputs.map(() => []);
    for (let k = 0; k < WINDOWS; k++) {
      // Every stream submits its k-th window in the same tick.
      const round = streams.map((s, i) => s.infer(inputs[i]![k]!));
      (await Promise.all(round)).forEach((p, i) => results[i]!.push(p));
    }
    expect(vad.stats.largestBatch).toBe(FILES.length);
    expect(vad.stats.batches).toBe(WINDOWS);
    let maxDiff = 0;
    for (let i = 0; i < FILES.length; i++) {
      for (let k = 0; k < WINDOWS; k++) maxDiff = Math.max(maxDiff, Math.abs(results[i]![k]! - reference[i]![k]!));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    // The fixtures really differ (a broken batch that mixed up rows would be caught).
    expect(Math.max(...results[0]!)).toBeGreaterThan(0.9);
    expect(Math.max(...results[2]!)).toBeLessThan(0.2);
    await vad.close();
  });

  it('a batch that throws is retried per stream; only the bad stream gets vad_inference_failed', async () => {
    const POISON = 0.123_456;
    // Fails whenever a row of the batch starts (after its context) with the poison value.
    const flaky: VadModel = {
      run: (input, state, n) => {
        for (let i = 0; i < n; i++) {
          if (input[i * SILERO_INPUT + SILERO_CONTEXT] === Math.fround(POISON)) throw new Error('simulated kernel failure');
        }
        return model.run(input, state, n);
      },
      close: async () => {},
    };
    const inputs = [windowsOf('hello.16k.wav'), windowsOf('booking.16k.wav'), windowsOf('stop.16k.wav')];
    const reference = await Promise.all([unbatched(inputs[0]!), unbatched(inputs[2]!)]);
    const vad = new SharedVad({ model: flaky });
    const [a, bad, c] = inputs.map(() => vad.openStream()) as [ReturnType<SharedVad['openStream']>, ReturnType<SharedVad['openStream']>, ReturnType<SharedVad['openStream']>];
    const poisoned = new Float32Array(512).fill(POISON);
    const got: { a: number[]; c: number[]; badErrors: unknown[]; badOk: number } = { a: [], c: [], badErrors: [], badOk: 0 };
    for (let k = 0; k < 10; k++) {
      const badWindow = k === 3 || k === 7 ? poisoned : inputs[1]![k]!;
      const [pa, pb, pc] = await Promise.allSettled([a.infer(inputs[0]![k]!), bad.infer(badWindow), c.infer(inputs[2]![k]!)]);
      got.a.push(pa.status === 'fulfilled' ? pa.value : Number.NaN);
      got.c.push(pc.status === 'fulfilled' ? pc.value : Number.NaN);
      if (pb.status === 'rejected') got.badErrors.push(pb.reason);
      else got.badOk++;
    }
    expect(got.badErrors).toHaveLength(2);
    expect(got.badErrors[0]).toBeInstanceOf(VadError);
    expect((got.badErrors[0] as VadError).code).toBe('vad_inference_failed');
    expect(got.badOk).toBe(8);
    for (let k = 0; k < 10; k++) {
      expect(Math.abs(got.a[k]! - reference[0]![k]!)).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(got.c[k]! - reference[1]![k]!)).toBeLessThanOrEqual(1e-5);
    }
    expect(vad.stats.failedBatches).toBe(2);
    await vad.close();
  });

  it('NaN samples in one stream are refused for that window only; the other streams are unaffected', async () => {
    const vad = borrow(model);
    const good = vad.openStream();
    const broken = vad.openStream();
    const inputs = windowsOf('hello.16k.wav');
    const reference = await unbatched(inputs.slice(0, 5));
    const nan = new Float32Array(512).fill(Number.NaN);
    const results = await Promise.allSettled(inputs.slice(0, 5).map((w, k) => [good.infer(w), broken.infer(k === 1 ? nan : w)]).flat());
    const goodResults = results.filter((_, i) => i % 2 === 0);
    const brokenResults = results.filter((_, i) => i % 2 === 1);
    goodResults.forEach((r, k) => {
      expect(r.status).toBe('fulfilled');
      expect(Math.abs((r as PromiseFulfilledResult<number>).value - reference[k]!)).toBeLessThanOrEqual(1e-5);
    });
    expect(brokenResults[1]!.status).toBe('rejected');
    expect((brokenResults[1] as PromiseRejectedResult).reason).toMatchObject({ name: 'AudioFormatError', code: 'audio_invalid_samples' });
    // After the failure the stream keeps working with finite probabilities.
    for (const r of [brokenResults[2]!, brokenResults[3]!, brokenResults[4]!]) {
      expect(r.status).toBe('fulfilled');
      expect(Number.isFinite((r as PromiseFulfilledResult<number>).value)).toBe(true);
    }
    await vad.close();
  });

  it('a missing model file is reported as vad_model_missing, and the window fails instead of hanging', async () => {
    const vad = new SharedVad({ modelPath: '/nonexistent/silero.onnx' });
    const stream = vad.openStream();
    await expect(stream.infer(new Float32Array(512))).rejects.toMatchObject({ name: 'VadError', code: 'vad_model_missing' });
    await vad.close();
  });

  it('rejects windows that are not 512 samples', () => {
    const vad = borrow(model);
    const stream = vad.openStream();
    expect(() => stream.push(new Float32Array(480), () => {})).toThrow(VadError);
    stream.close();
    expect(vad.stats.streams).toBe(0);
    void vad.close();
  });

  it('a stream over maxQueuePerStream loses its second-oldest windows, each with one error callback', async () => {
    const vad = new SharedVad({ model: { run: (i, s, n) => model.run(i, s, n), close: async () => {} }, maxQueuePerStream: 2 });
    const stream = vad.openStream();
    const windows = windowsOf('hello.16k.wav');
    const calls: Array<[number, string]> = [];
    for (let k = 0; k < 5; k++) stream.push(windows[k]!, (error) => calls.push([k, error === undefined ? 'ok' : error.code]));
    await new Promise<void>((resolve) => {
      const other = vad.openStream();
      other.push(windows[0]!, () => resolve());
    });
    while (calls.length < 5) await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([
      [1, 'vad_inference_failed'],
      [2, 'vad_inference_failed'],
      [3, 'vad_inference_failed'],
      [0, 'ok'],
      [4, 'ok'],
    ]);
    await vad.close();
  });

  it('a closed stream drops its queued windows without calling back', async () => {
    const vad = borrow(model);
    const stream = vad.openStream();
    let calls = 0;
    for (let k = 0; k < 5; k++) stream.push(new Float32Array(512), () => calls++);
    stream.close();
    const other = vad.openStream();
    await other.infer(new Float32Array(512));
    expect(calls).toBe(0);
    await vad.close();
  });
});
