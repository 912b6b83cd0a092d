import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSileroModel, SILERO_INPUT, SILERO_STATE, SILERO_CONTEXT, type VadModel } from '../../src/vad/model.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import type { WorkerSileroModel } from '../../src/vad/worker-model.js';
import { loadFixture } from './helpers.js';

const FILES = ['hello.16k.wav', 'booking.16k.wav', 'noise.16k.wav', 'stop.16k.wav'];
const WINDOWS = 40;
const inThread = await loadSileroModel();
const inWorker = await loadSileroModel({ thread: 'worker' });
afterAll(async () => {
  await inThread.close();
  await inWorker.close();
});

/** One batch: row i = window k of FILES[i] after k windows of its own history. */
async function scoreAll(model: VadModel): Promise<number[][]> {
  const n = FILES.length;
  const windows = FILES.map((f) => loadFixture(f).samples);
  const state = new Float32Array(2 * n * SILERO_STATE);
  const input = new Float32Array(n * SILERO_INPUT);
  const out: number[][] = FILES.map(() => []);
  for (let k = 0; k < WINDOWS; k++) {
    for (let i = 0; i < n; i++) {
      const samples = windows[i]!;
      const start = k * 512;
      input.fill(0, i * SILERO_INPUT, i * SILERO_INPUT + SILERO_CONTEXT);
      if (k > 0) input.set(samples.subarray(start - SILERO_CONTEXT, start), i * SILERO_INPUT);
      input.set(samples.subarray(start, start + 512), i * SILERO_INPUT + SILERO_CONTEXT);
    }
    const result = await model.run(input, state, n);
    state.set(result.state);
    for (let i = 0; i < n; i++) out[i]!.push(result.probabilities[i]!);
  }
  return out;
}

describe('Silero in a worker thread', () => {
  it('scores exactly what the in-thread model scores', async () => {
    const a = await scoreAll(inThread);
    const b = await scoreAll(inWorker);
    let maxDiff = 0;
    for (let i = 0; i < FILES.length; i++) for (let k = 0; k < WINDOWS; k++) maxDiff = Math.max(maxDiff, Math.abs(a[i]![k]! - b[i]![k]!));
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    expect(Math.max(...b[0]!)).toBeGreaterThan(0.9); // speech
    expect(Math.max(...b[2]!)).toBeLessThan(0.2); // noise
    expect(inWorker.graph).toBe('batched');
  });

  it('the event loop runs other callbacks while a batch is scored (in-thread, the batch runs first)', async () => {
    const order = async (model: VadModel): Promise<string[]> => {
      const n = 512;
      const seen: string[] = [];
      const pending = model.run(new Float32Array(n * SILERO_INPUT), new Float32Array(2 * n * SILERO_STATE), n).then(() => void seen.push('scored'));
      setImmediate(() => seen.push('other callback'));
      await pending;
      await new Promise((resolve) => setImmediate(resolve));
      return seen;
    };
    expect(await order(inThread)).toEqual(['scored', 'other callback']);
    expect(await order(inWorker)).toEqual(['other callback', 'scored']);
  });

  it('a SharedVad on a worker model: a worker that dies mid-stream costs no window', async () => {
    const model = (await loadSileroModel({ thread: 'worker' })) as WorkerSileroModel;
    const vad = new SharedVad({ model });
    const samples = loadFixture('hello.16k.wav').samples;
    const streams = [vad.openStream(), vad.openStream()];
    const reference = await scoreAll(inThread);
    const scores: number[] = [];
    const errors: unknown[] = [];
    for (let k = 0; k < 20; k++) {
      const round = streams.map((s) => s.infer(samples.subarray(k * 512, (k + 1) * 512)).catch((error: unknown) => (errors.push(error), Number.NaN)));
      if (k === 10) await model.terminateWorker(); // mid-stream, while the batch may be in the worker
      scores.push(...(await Promise.all(round)).slice(0, 1));
    }
    expect(errors).toEqual([]);
    // Each stream keeps its own state across the new worker: still exactly the reference.
    for (let k = 0; k < 20; k++) expect(Math.abs(scores[k]! - reference[0]![k]!)).toBeLessThanOrEqual(1e-5);
    await vad.close();
  });

  it('a worker that dies: the batch in it settles (scored or vad_inference_failed), the next batch gets a new worker', async () => {
    const model = (await loadSileroModel({ thread: 'worker' })) as WorkerSileroModel;
    const n = 512;
    const inFlight = model.run(new Float32Array(n * SILERO_INPUT), new Float32Array(2 * n * SILERO_STATE), n).then(
      () => 'scored',
      (error: { code?: string }) => error.code,
    );
    await model.terminateWorker();
    expect(['scored', 'vad_inference_failed']).toContain(await inFlight);
    expect(await scoreAll(model)).toEqual(await scoreAll(inWorker));
    await model.close();
  });

  it('the process can exit while a batch is in the worker (exit code 0, not an abort)', () => {
    const probe = fileURLToPath(new URL('./exit-mid-batch-probe.ts', import.meta.url));
    const codes = [1, 3, 6].map((delayMs) => spawnSync(process.execPath, ['--import', 'tsx', probe, String(delayMs)], { encoding: 'utf8', timeout: 30_000 }));
    for (const result of codes) {
      expect(result.stderr).not.toContain('terminate called');
      expect(result.status).toBe(0);
    }
  });

  it('an idle model does not keep the process alive: a script that loaded (or used) it exits by itself', () => {
    const probe = fileURLToPath(new URL('./idle-exit-probe.ts', import.meta.url));
    for (const mode of ['loaded', 'used']) {
      const result = spawnSync(process.execPath, ['--import', 'tsx', probe, mode], { encoding: 'utf8', timeout: 20_000 });
      expect(result.stdout, mode).toContain('loaded');
      expect(result.signal, mode).toBeNull(); // not killed by the timeout
      expect(result.status, mode).toBe(0);
    }
  });

  it('closing the model ends its worker; a batch after close fails with vad_inference_failed', async () => {
    const model = await loadSileroModel({ thread: 'worker' });
    await model.close();
    await expect(model.run(new Float32Array(SILERO_INPUT), new Float32Array(2 * SILERO_STATE), 1)).rejects.toMatchObject({ code: 'vad_inference_failed' });
  });

  it('a model file that is not Silero fails to load with vad_model_missing', async () => {
    await expect(loadSileroModel({ thread: 'worker', modelPath: new URL('../fixtures/hello.16k.wav', import.meta.url).pathname })).rejects.toMatchObject({ code: 'vad_model_missing' });
  });
});

describe('catch-up batches (VadModel.runSteps)', () => {
  const windowsOf = (file: string, count: number): Float32Array[] => {
    const samples = loadFixture(file).samples;
    return Array.from({ length: count }, (_, k) => samples.subarray(k * 512, (k + 1) * 512));
  };

  /** Each window awaited before the next: one window per inference. */
  async function oneByOne(model: VadModel, windows: Float32Array[]): Promise<number[]> {
    const vad = new SharedVad({ model: { run: (i, s, n) => model.run(i, s, n), close: async () => {} } });
    const stream = vad.openStream();
    const out: number[] = [];
    for (const w of windows) out.push(await stream.infer(w));
    await vad.close();
    return out;
  }

  for (const [label, model] of [
    ['in the thread', () => inThread],
    ['in the worker', () => inWorker],
  ] as const) {
    it(`streams that fell behind catch up in one model call, scoring exactly what one window at a time scores (${label})`, async () => {
      const lengths = [12, 5, 1]; // backlogs of different depths: the steps narrow as streams run out
      const inputs = [windowsOf('hello.16k.wav', 12), windowsOf('booking.16k.wav', 5), windowsOf('stop.16k.wav', 1)];
      const reference = await Promise.all(inputs.map((w) => oneByOne(model(), w)));
      const calls: number[][] = [];
      const vad = new SharedVad({
        batchWindowMs: 5,
        model: {
          run: (i, s, n) => model().run(i, s, n),
          runSteps: (i, s, counts) => (calls.push([...counts]), model().runSteps!(i, s, counts)),
          close: async () => {},
        },
      });
      const streams = inputs.map(() => vad.openStream());
      // Every window queued before the first batch runs (a busy loop let them pile up).
      const results = await Promise.all(streams.map((s, i) => Promise.all(inputs[i]!.map((w) => s.infer(w)))));
      expect(calls).toEqual([[3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]]);
      for (let i = 0; i < lengths.length; i++) {
        for (let k = 0; k < lengths[i]!; k++) expect(Math.abs(results[i]![k]! - reference[i]![k]!)).toBeLessThanOrEqual(1e-5);
      }
      expect(Math.max(...results[0]!)).toBeGreaterThan(0.9);
      expect(vad.stats.windows).toBe(18);
      await vad.close();
    });
  }

  it('a catch-up batch that fails is scored one window per stream instead; no window is lost', async () => {
    const windows = windowsOf('hello.16k.wav', 6);
    const reference = await oneByOne(inThread, windows);
    const vad = new SharedVad({
      batchWindowMs: 5,
      model: { run: (i, s, n) => inThread.run(i, s, n), runSteps: () => Promise.reject(new Error('boom')), close: async () => {} },
    });
    const stream = vad.openStream();
    const results = await Promise.all(windows.map((w) => stream.infer(w)));
    for (let k = 0; k < windows.length; k++) expect(Math.abs(results[k]! - reference[k]!)).toBeLessThanOrEqual(1e-5);
    await vad.close();
  });
});
