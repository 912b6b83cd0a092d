/** Against the real Google Cloud APIs; runs only with GOOGLE_APPLICATION_CREDENTIALS (npm run test:integration). */
import { describe, expect, it } from 'vitest';
import { GoogleStt, GoogleTts } from '../../src/providers/google/index.js';
import { int16ToFloat32 as int16ToFloat } from '../../src/audio/frame.js';
import type { Transcript } from '../../src/providers/types.js';

const credentials = process.env['GOOGLE_APPLICATION_CREDENTIALS'];
const signal = (): AbortSignal => AbortSignal.timeout(55_000);

describe.skipIf(!credentials)('Google Cloud (real service)', () => {
  it('synthesizes LINEAR16 at 16 kHz and recognizes it back, streaming with interim results', async () => {
    const tts = new GoogleTts({ sampleRate: 16_000 });
    const parts: Int16Array[] = [];
    for await (const c of tts.synthesize('Book a table for two people tomorrow at seven.', { signal: signal() })) {
      expect(c.sampleRate).toBe(16_000);
      parts.push(c.pcm);
    }
    const stt = new GoogleStt({ model: 'latest_short' });
    async function* audio(): AsyncGenerator<Float32Array> {
      for (const p of parts) for (let i = 0; i < p.length; i += 1600) yield int16ToFloat(p.subarray(i, i + 1600));
    }
    const results: Transcript[] = [];
    for await (const t of stt.stream(audio(), { signal: signal() })) results.push(t);
    expect(results.filter((r) => r.final).map((r) => r.text).join(' ').toLowerCase()).toMatch(/table/);
  });

  it('accepts SSML', async () => {
    const tts = new GoogleTts();
    let samples = 0;
    for await (const c of tts.synthesize('<speak>Table for <say-as interpret-as="cardinal">2</say-as>.</speak>', { signal: signal() })) samples += c.pcm.length;
    expect(samples).toBeGreaterThan(10_000);
  });
});
