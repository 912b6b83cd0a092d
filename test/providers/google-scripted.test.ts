import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GoogleStt } from '../../src/providers/google/index.js';
import { closeSpeech, concat, silence, speech } from '../helpers/speech.js';
import { GoogleServer } from './servers/google-server.js';
import { scriptedRecognizer } from './servers/google-scripted.js';

const RATE = 16_000;
const FRAME = 320; // 20 ms

let server: GoogleServer;
beforeEach(async () => {
  server = await new GoogleServer().start();
});
afterEach(async () => {
  await server.close();
});
afterAll(async () => {
  await closeSpeech();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const signal = (): AbortSignal => new AbortController().signal;
/** A 220 Hz tone burst at 0.3, `ms` long. */
const tone = (ms: number): Float32Array =>
  Float32Array.from({ length: (RATE * ms) / 1000 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / RATE));

interface Heard {
  readonly text: string;
  readonly final: boolean;
  /** Audio fed so far when the result arrived, in ms. */
  readonly fedMs: number;
}

/** Feeds `clip` in 20 ms frames at real-time pace through `stt.stream()`, noting how much audio was fed when each result arrived. */
async function listen(stt: GoogleStt, clip: Float32Array): Promise<{ heard: Heard[]; endedAfterAudioMs: number }> {
  let fed = 0;
  let audioEndedAt = 0;
  async function* audio(): AsyncGenerator<Float32Array> {
    const start = performance.now();
    for (let i = 0; i < clip.length; i += FRAME) {
      // Paced against the clock, not frame by frame, so timer lateness does not add up.
      await sleep(Math.max(0, start + (i / RATE) * 1000 - performance.now()));
      fed = Math.min(clip.length, i + FRAME);
      yield clip.subarray(i, i + FRAME);
    }
    audioEndedAt = performance.now();
  }
  const heard: Heard[] = [];
  for await (const t of stt.stream(audio(), { signal: signal() })) heard.push({ text: t.text, final: t.final, fedMs: (fed / RATE) * 1000 });
  return { heard, endedAfterAudioMs: performance.now() - audioEndedAt };
}

describe('scriptedRecognizer behind GoogleStt.stream() over loopback gRPC', () => {
  it('sends growing interim prefixes while the voice lasts and the final 150 ms of audio after it stops', async () => {
    const recognizer = scriptedRecognizer({ phrases: ['book a table for two'] });
    server.recognizeHandlers.push(recognizer);
    const { heard } = await listen(new GoogleStt(server.clientOptions), concat([silence(200), tone(1000), silence(600)]));

    const interims = heard.filter((h) => !h.final);
    expect(interims.length).toBeGreaterThanOrEqual(8); // one per 100 ms of voice
    expect(interims[0]).toMatchObject({ text: 'book' });
    expect(interims.every((h) => 'book a table for two'.startsWith(h.text) && h.text !== 'book a table for two')).toBe(true);
    expect(interims.at(-1)?.text).toBe('book a table for');
    // They arrive while the audio is being fed: the first after ~100 ms of voice, all before the voice ends.
    expect(interims[0]!.fedMs).toBeLessThan(200 + 100 + 100);
    expect(interims.every((h) => h.fedMs <= 1200 + 100)).toBe(true);

    const finals = heard.filter((h) => h.final);
    expect(finals.map((h) => h.text)).toEqual(['book a table for two']);
    // Sent at 1350 ms of audio (1200 ms edge + 150 ms); it reaches the client within a few frames,
    // long before the audio ends at 1800 ms.
    expect(recognizer.finals[0]).toMatchObject({ edgeMs: 1200, audioMs: 1350, onHalfClose: false, call: 0 });
    expect(finals[0]!.fedMs).toBeGreaterThanOrEqual(1350);
    expect(finals[0]!.fedMs).toBeLessThanOrEqual(1350 + 200);
    expect(server.recognizeCalls[0]?.halfClosed).toBe(true);
  });

  it('two voiced segments separated by 700 ms of silence give two finals, in order, each after its own edge', async () => {
    const recognizer = scriptedRecognizer({ phrases: ['book a table', 'for two people'] });
    server.recognizeHandlers.push(recognizer);
    const { heard } = await listen(new GoogleStt(server.clientOptions), concat([tone(600), silence(700), tone(600), silence(300)]));

    expect(heard.filter((h) => h.final).map((h) => h.text)).toEqual(['book a table', 'for two people']);
    expect(recognizer.finals.map((f) => [f.edgeMs, f.audioMs])).toEqual([
      [600, 750],
      [1900, 2050],
    ]);
    // The second segment's interims start over from its own first word, after the first final.
    const firstFinal = heard.findIndex((h) => h.final);
    expect(heard[firstFinal + 1]).toMatchObject({ text: 'for', final: false });
    expect(heard.slice(0, firstFinal).every((h) => h.fedMs < 1300)).toBe(true);
  });

  it('half-closing mid-segment finalizes it at once and ends the stream', async () => {
    const recognizer = scriptedRecognizer({ phrases: ['yes please'] });
    server.recognizeHandlers.push(recognizer);
    const { heard, endedAfterAudioMs } = await listen(new GoogleStt(server.clientOptions), tone(800));

    expect(heard.at(-1)).toMatchObject({ text: 'yes please', final: true });
    expect(recognizer.finals).toEqual([expect.objectContaining({ text: 'yes please', onHalfClose: true, audioMs: 800, edgeMs: 800 })]);
    expect(endedAfterAudioMs).toBeLessThan(250);
    expect(server.recognizeCalls[0]?.halfClosed).toBe(true);
  });

  it('hears Flite speech as one segment per sentence and shares its phrase queue across calls (turns)', async () => {
    const phrases = ['book a table for two', 'at seven tonight'];
    const recognizer = scriptedRecognizer({ phrases });
    server.defaultRecognizeHandler = recognizer;
    const stt = new GoogleStt(server.clientOptions);
    const first = await listen(stt, concat([await speech('Book a table for two.'), silence(300)]));
    const second = await listen(stt, concat([await speech('At seven tonight.'), silence(300)]));

    expect(first.heard.filter((h) => h.final).map((h) => h.text)).toEqual(['book a table for two']);
    expect(second.heard.filter((h) => h.final).map((h) => h.text)).toEqual(['at seven tonight']);
    expect(first.heard.some((h) => !h.final)).toBe(true);
    expect(recognizer.finals.map((f) => f.call)).toEqual([0, 1]);
    expect(phrases).toEqual([]);
  });

  it('a voiced segment finding no phrase hears nothing (a cough), and the stream still ends', async () => {
    const recognizer = scriptedRecognizer({ phrases: [] });
    server.recognizeHandlers.push(recognizer);
    const { heard } = await listen(new GoogleStt(server.clientOptions), concat([tone(300), silence(300)]));
    expect(heard).toEqual([]);
    expect(recognizer.results).toEqual([]);
  });
});
