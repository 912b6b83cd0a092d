import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { int16ToFloat32 as int16ToFloat } from '../../src/audio/frame.js';
import { FliteTts, PocketsphinxStt, fliteModule, splitSentences } from '../../src/providers/local/index.js';
import type { TtsChunk } from '../../src/providers/types.js';
import { collect } from './helpers.js';

const hasAsr = (() => {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-filters'], { encoding: 'utf8' });
  return r.status === 0 && /\basr\s+A->A/.test(r.stdout);
})();
// In CI ffmpeg is installed, and the recognition test must run (and fail if ffmpeg is missing).
const skipAsr = !hasAsr && !process.env['CI'];

function join16(chunks: readonly TtsChunk[]): Int16Array {
  const out = new Int16Array(chunks.reduce((n, c) => n + c.pcm.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c.pcm, offset);
    offset += c.pcm.length;
  }
  return out;
}

const rms = (pcm: Int16Array): number => Math.sqrt(pcm.reduce((s, v) => s + v * v, 0) / Math.max(1, pcm.length));
const signal = (): AbortSignal => new AbortController().signal;

const tts = new FliteTts();
const fast = new FliteTts({ voice: 'kal16' });
afterAll(async () => {
  await Promise.all([tts.close(), fast.close()]);
});

const SENTENCE = 'yes i would like to book a table for two people tomorrow at seven';

describe('FliteTts (Flite compiled to WASI)', () => {
  it('synthesizes 16 kHz PCM of plausible length and loudness for the text', async () => {
    const chunks = await collect(tts.synthesize(SENTENCE, { signal: signal() }));
    expect(chunks.every((c) => c.sampleRate === 16_000)).toBe(true);
    const pcm = join16(chunks);
    const seconds = pcm.length / 16_000;
    // About 12-15 characters per second of speech; allow a wide margin.
    expect(seconds).toBeGreaterThan(SENTENCE.length / 30);
    expect(seconds).toBeLessThan(SENTENCE.length / 6);
    expect(rms(pcm)).toBeGreaterThan(300);
  });

  it('every bundled voice speaks at 16 kHz', async () => {
    for (const voice of ['slt', 'kal16', 'rms', 'awb'] as const) {
      const chunks = await collect(fast.synthesize('Hello there.', { signal: signal(), voice }));
      expect(chunks.length, voice).toBe(1);
      expect(chunks[0]?.sampleRate, voice).toBe(16_000);
      expect(chunks[0]!.pcm.length, voice).toBeGreaterThan(8000);
    }
  });

  it('streams one chunk per sentence, the first before the rest is rendered', async () => {
    const text = 'Your table is booked. It is for two people! Do you need anything else?';
    expect(splitSentences(text)).toHaveLength(3);
    const chunks = await collect(fast.synthesize(text, { signal: signal() }));
    expect(chunks).toHaveLength(3);
  });

  it('abort between sentences rejects with provider_aborted', async () => {
    const controller = new AbortController();
    const got: TtsChunk[] = [];
    const run = async (): Promise<void> => {
      for await (const c of fast.synthesize('One. Two. Three. Four.', { signal: controller.signal })) {
        got.push(c);
        controller.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'provider_aborted' });
    expect(got).toHaveLength(1);
  });

  it('concurrent calls on one worker do not mix their audio', async () => {
    const [a, b] = await Promise.all([
      collect(fast.synthesize('A short one.', { signal: signal() })),
      collect(fast.synthesize('A somewhat longer sentence that takes more time to say.', { signal: signal() })),
    ]);
    expect(join16(b).length).toBeGreaterThan(join16(a).length * 2);
  });

  it('survives many sentences with idle gaps between them (finished WASM instances are collected)', async () => {
    // Without a GC per job, about a dozen dead instances with idle time in between crashed Node 20.
    for (let i = 0; i < 16; i++) {
      const chunks = await collect(tts.synthesize('Your table for two is booked.', { signal: signal() }));
      expect(chunks.length).toBe(1);
      await new Promise((r) => setTimeout(r, 60));
    }
  });

  it('compiles the WASM module once per process', async () => {
    expect(await fliteModule()).toBe(await fliteModule());
  });

  it('an unknown voice is refused', async () => {
    expect(() => new FliteTts({ voice: 'hal9000' as never })).toThrow(/voice/);
    await expect(collect(fast.synthesize('x', { signal: signal(), voice: 'hal9000' }))).rejects.toBeInstanceOf(ProviderError);
  });
});

describe('PocketsphinxStt (ffmpeg asr filter)', () => {
  it.skipIf(skipAsr)('recognizes Flite speech of a booking request (most words)', async () => {
    const pcm = join16(await collect(fast.synthesize(SENTENCE, { signal: signal() })));
    const stt = new PocketsphinxStt();
    expect(await stt.probe()).toMatchObject({ ok: true });
    const { text, final } = await stt.transcribe({ samples: int16ToFloat(pcm), sampleRate: 16_000 }, { signal: signal() });
    expect(final).toBe(true);
    const expected = SENTENCE.split(' ');
    const heard = new Set(text.split(' '));
    const hits = expected.filter((w) => heard.has(w)).length;
    expect(hits / expected.length, `heard "${text}"`).toBeGreaterThanOrEqual(0.7);
  });

  it('probe() says plainly when ffmpeg is missing, and transcribe() fails with provider_unavailable', async () => {
    const stt = new PocketsphinxStt({ ffmpegPath: '/nonexistent/ffmpeg' });
    const probe = await stt.probe();
    expect(probe.ok).toBe(false);
    expect(probe.message).toMatch(/ffmpeg was not found.*apt-get install ffmpeg/);
    await expect(stt.transcribe({ samples: new Float32Array(1600), sampleRate: 16_000 }, { signal: signal() })).rejects.toMatchObject({
      code: 'provider_unavailable',
    });
  });

  it('abort kills the ffmpeg process', async () => {
    // A stand-in ffmpeg that has the filter, records its pid and never finishes.
    const dir = mkdtempSync(join(tmpdir(), 'voxstate-fake-ffmpeg-'));
    const script = join(dir, 'ffmpeg');
    writeFileSync(
      script,
      `#!/bin/sh\nif [ "$2" = "-filters" ]; then echo " ... asr               A->A       Automatic Speech Recognition."; exit 0; fi\necho $$ > "${dir}/pid"\nexec sleep 30\n`,
    );
    chmodSync(script, 0o755);
    try {
      // The shipped models as they are: nothing to generate, so this runs without pocketsphinx installed.
      const stt = new PocketsphinxStt({ ffmpegPath: script, languageModel: 'generic', cmninit: 'model' });
      const controller = new AbortController();
      const pending = stt.transcribe({ samples: new Float32Array(1600), sampleRate: 16_000 }, { signal: controller.signal });
      let pid = 0;
      for (let i = 0; i < 100 && !pid; i++) {
        await new Promise((r) => setTimeout(r, 20));
        try {
          pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
        } catch {
          // not started yet
        }
      }
      expect(pid).toBeGreaterThan(0);
      controller.abort();
      await expect(pending).rejects.toMatchObject({ code: 'provider_aborted' });
      await new Promise((r) => setTimeout(r, 50));
      expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasAsr)('ffmpeg reports the asr filter (sanity check of the dev environment)', () => {
    expect(execFileSync('ffmpeg', ['-hide_banner', '-filters'], { encoding: 'utf8' })).toMatch(/asr/);
  });
});
