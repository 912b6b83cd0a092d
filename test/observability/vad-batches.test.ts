/**
 * SharedVad's per-batch observer (what feeds voxstate_vad_inference_seconds and
 * voxstate_vad_batch_size), on the real Silero model.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadSileroModel } from '../../src/vad/model.js';
import { SharedVad } from '../../src/vad/shared-vad.js';

const model = await loadSileroModel();
afterAll(() => model.close());

const silence = (): Float32Array => new Float32Array(512);

describe('SharedVad.observeBatches', () => {
  it('tells each batched inference its window count and duration; a throwing observer changes no result; unsubscribed, it hears nothing', async () => {
    const vad = new SharedVad({ model: { run: (i, s, n) => model.run(i, s, n), close: async () => {} }, batchWindowMs: 0 });
    const a = vad.openStream();
    const b = vad.openStream();
    const c = vad.openStream();
    const batches: { windows: number; seconds: number }[] = [];
    const stop = vad.observeBatches((windows, seconds) => batches.push({ windows, seconds }));
    const stopThrowing = vad.observeBatches(() => {
      throw new Error('observer bug');
    });
    // Three streams push in the same tick: one batch of three; then one stream alone.
    const first = await Promise.all([a, b, c].map((s) => s.infer(silence())));
    const second = await a.infer(silence());
    expect(batches.map((b) => b.windows)).toEqual([3, 1]);
    for (const batch of batches) expect(batch.seconds).toBeGreaterThan(0);
    expect(vad.stats.batches).toBe(2);
    for (const p of [...first, second]) expect(p).toBeLessThan(0.5);

    stop();
    stopThrowing();
    await b.infer(silence());
    expect(batches).toHaveLength(2);
    expect(vad.stats.batches).toBe(3);
    await vad.close();
  });
});
