import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSileroModel, locateSileroModel, SILERO_CONTEXT, SILERO_INPUT, SILERO_STATE, SILERO_WINDOW, type VadModel } from '../../src/vad/model.js';
import { rewriteSileroV5 } from '../../src/vad/model-rewrite.js';
import { decodeOnnxModel, encodeOnnxModel } from '../../src/vad/onnx-proto.js';
import { WindowQueue } from '../../src/vad/window-queue.js';
import { loadFixture } from './helpers.js';

const FILES = ['hello.16k.wav', 'booking.16k.wav', 'noise.16k.wav', 'booking-noisy.16k.wav', 'digits.16k.wav', 'padded-hello.16k.wav'];
const original = await loadSileroModel({ graph: 'original' });
const rewritten = await loadSileroModel({ graph: 'batched' });
afterAll(async () => {
  await original.close();
  await rewritten.close();
});

/**
 * Scores every fixture from its first window to the shortest fixture's end, all fixtures in one batch
 * per step, carrying each row's state and context like SharedVad does. Returns [file][window].
 */
async function scoreAll(model: VadModel, files: string[]): Promise<number[][]> {
  const signals = files.map((f) => loadFixture(f).samples);
  const steps = Math.min(...signals.map((s) => Math.floor(s.length / SILERO_WINDOW)));
  const n = signals.length;
  const input = new Float32Array(n * SILERO_INPUT);
  let state = new Float32Array(2 * n * SILERO_STATE);
  const out: number[][] = signals.map(() => []);
  for (let k = 0; k < steps; k++) {
    signals.forEach((signal, i) => {
      const row = i * SILERO_INPUT;
      if (k > 0) input.set(signal.subarray(k * SILERO_WINDOW - SILERO_CONTEXT, k * SILERO_WINDOW), row);
      input.set(signal.subarray(k * SILERO_WINDOW, (k + 1) * SILERO_WINDOW), row + SILERO_CONTEXT);
    });
    const result = await model.run(input, state, n);
    state = Float32Array.from(result.state);
    result.probabilities.forEach((p, i) => out[i]!.push(p));
  }
  return out;
}

describe('Silero v5 load-time rewrite', () => {
  it('gives the same probabilities as the shipped graph within 1e-5 on every fixture', async () => {
    expect(original.graph).toBe('original');
    expect(rewritten.graph).toBe('batched'); // the rewrite really ran (loading falls back to the shipped graph)
    const [a, b] = await Promise.all([scoreAll(original, FILES), scoreAll(rewritten, FILES)]);
    let maxDiff = 0;
    let windows = 0;
    a.forEach((row, i) =>
      row.forEach((p, k) => {
        maxDiff = Math.max(maxDiff, Math.abs(p - b[i]![k]!));
        windows++;
      }),
    );
    expect(windows).toBeGreaterThan(100);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    // Real speech and real noise are both in there.
    expect(Math.max(...a[1]!)).toBeGreaterThan(0.9);
    expect(Math.max(...a[2]!)).toBeLessThan(0.2);
  });

  it('has no sr input and no control flow', () => {
    const graph = decodeOnnxModel(rewriteSileroV5(readFileSync(locateSileroModel()))).graph;
    expect(graph.input.map((i) => i.name)).toEqual(['input', 'state']);
    expect(graph.output.map((o) => o.name)).toEqual(['output', 'stateN']);
    expect(graph.node.filter((n) => n.opType === 'If' || n.opType === 'Loop')).toEqual([]);
  });

  it('onnx-proto decodes and re-encodes the shipped model without losing anything ORT uses', async () => {
    const bytes = encodeOnnxModel(decodeOnnxModel(readFileSync(locateSileroModel())));
    const { InferenceSession, Tensor } = await import('onnxruntime-node');
    const session = await InferenceSession.create(bytes);
    const signal = loadFixture('hello.16k.wav').samples;
    const input = new Float32Array(SILERO_INPUT);
    input.set(signal.subarray(8 * SILERO_WINDOW - SILERO_CONTEXT, 9 * SILERO_WINDOW));
    const state = new Float32Array(2 * SILERO_STATE);
    const result = await session.run({
      input: new Tensor('float32', input, [1, SILERO_INPUT]),
      state: new Tensor('float32', state, [2, 1, SILERO_STATE]),
      sr: new Tensor('int64', BigInt64Array.from([16000n]), []),
    });
    const reference = await original.run(input, state, 1);
    expect((result['output']!.data as Float32Array)[0]).toBe(reference.probabilities[0]);
    await session.release();
  });

  it('refuses bytes that are not Silero v5', () => {
    expect(() => rewriteSileroV5(new Uint8Array([8, 1, 0x3a, 0]))).toThrow(/cannot rewrite/);
  });
});

describe('WindowQueue', () => {
  const win = (v: number): Float32Array => new Float32Array(SILERO_WINDOW).fill(v);

  it('keeps FIFO order across wrap-around and growth', () => {
    const q = new WindowQueue<Error>();
    const seen: number[] = [];
    let next = 0;
    let expected = 0;
    // Interleave pushes and shifts so the head moves around the ring before it grows.
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < (round % 5) + 1; k++) q.push(win(next++), undefined);
      for (let k = 0; k < (round % 3) + 1 && q.length > 0; k++) {
        seen.push(q.head()[0]!);
        expect(q.head()[SILERO_WINDOW - 1]).toBe(expected++);
        q.shift();
      }
    }
    while (q.length > 0) {
      seen.push(q.head()[0]!);
      q.shift();
    }
    expect(seen).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it('removeSecond drops the second-oldest window and keeps the rest in order', () => {
    const q = new WindowQueue<Error>();
    const tags: string[] = [];
    for (let i = 0; i < 5; i++) q.push(win(i), () => tags.push(`cb${i}`));
    const into = new Float32Array(SILERO_WINDOW);
    q.removeSecond(into)?.(undefined, 0, into);
    expect(into[0]).toBe(1);
    expect(tags).toEqual(['cb1']);
    const rest: number[] = [];
    while (q.length > 0) {
      rest.push(q.head()[0]!);
      q.headCallback()?.(undefined, 0, q.head());
      q.shift();
    }
    expect(rest).toEqual([0, 2, 3, 4]);
    expect(tags).toEqual(['cb1', 'cb0', 'cb2', 'cb3', 'cb4']);
  });

  it('a ring that grew for a backlog gives its memory back once drained, and keeps working', () => {
    const q = new WindowQueue<Error>();
    for (let i = 0; i < 100; i++) q.push(win(i), undefined);
    expect(q.capacity).toBe(128);
    const seen: number[] = [];
    while (q.length > 0) {
      seen.push(q.head()[0]!);
      q.shift();
    }
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(q.capacity).toBe(8);
    q.push(win(7), undefined);
    expect(q.head()[0]).toBe(7);
    expect(q.capacity).toBe(8);
  });

  it('removeAt(k) drops the k-th oldest window (the ones before it may be in a catch-up batch); at(k) reads any', () => {
    const q = new WindowQueue<Error>();
    const tags: string[] = [];
    for (let i = 0; i < 6; i++) q.push(win(i), () => tags.push(`cb${i}`));
    q.shift(); // the head is no longer slot 0
    q.push(win(6), () => tags.push('cb6'));
    expect([0, 1, 2, 3, 4, 5].map((k) => q.at(k)[0])).toEqual([1, 2, 3, 4, 5, 6]);
    const into = new Float32Array(SILERO_WINDOW);
    q.removeAt(3, into)?.(undefined, 0, into);
    expect(into[0]).toBe(4);
    expect(tags).toEqual(['cb4']);
    const rest: number[] = [];
    while (q.length > 0) {
      rest.push(q.head()[0]!);
      q.shift();
    }
    expect(rest).toEqual([1, 2, 3, 5, 6]);
  });
});
