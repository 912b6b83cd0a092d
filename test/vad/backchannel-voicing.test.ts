/**
 * Backchannel-proof barge-in, on real speech: Flite says short acknowledgements ("yeah.", "uh huh.")
 * and a real interruption, real Silero scores them, and the voiced time of each utterance (what the
 * session compares with minInterruptionMs through a `vad.voiced` mark) tells them apart. Speech and
 * noise are made on the spot (test/helpers/speech.ts); the measured table is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedVad } from '../../src/vad/shared-vad.js';
import type { VadEvent } from '../../src/vad/vad-stream.js';
import { closeSpeech, concat, noiseBurst, silence, speech } from '../helpers/speech.js';
import { checkEventGrammar, runVad, type Recorded } from './helpers.js';

/** The mark the session would use: minInterruptionMs. */
const MARK_MS = 600;
const BACKCHANNELS = ['yeah.', 'uh huh.', 'okay.', 'right.', 'sure.'] as const;
const INTERRUPTION = 'No, stop. That is not what I asked.';
const NOISE = 'noise burst 250 ms';

type Of<T extends VadEvent['type']> = Extract<VadEvent, { type: T }>;
const of = <T extends VadEvent['type']>(events: readonly Recorded[], type: T): Array<Of<T>> =>
  events.filter((e) => e.type === type).map((e) => e.event as Of<T>);

const vad = new SharedVad();
const results = new Map<string, { clipMs: number; events: Recorded[] }>();

beforeAll(async () => {
  const clips: Array<[string, Float32Array]> = [];
  for (const text of [...BACKCHANNELS, INTERRUPTION]) clips.push([text, await speech(text)]);
  clips.push([NOISE, noiseBurst(250, 7)]);
  for (const [name, clip] of clips) {
    // 500 ms of silence before, 1 s after (runVad's trailing silence).
    const events = await runVad(concat([silence(500), clip]), { vad, voicedMarksMs: [MARK_MS], trailingSilenceMs: 1000 });
    results.set(name, { clipMs: Math.round(clip.length / 16), events });
  }
  const rows = [...results].map(([name, { clipMs, events }]) => {
    const ends = of(events, 'vad.speechEnd');
    const voiced = of(events, 'vad.voiced');
    return {
      clip: JSON.stringify(name),
      clipMs,
      utterances: ends.length,
      voicedMs: ends.map((e) => e.voicedMs).join(' + ') || '-',
      durationMs: ends.map((e) => e.durationMs).join(' + ') || '-',
      pauses: of(events, 'vad.speechPause').length,
      [`voiced@${MARK_MS}`]: voiced.map((e) => e.atMs).join(' ') || '-',
    };
  });
  const columns = Object.keys(rows[0]!) as Array<keyof (typeof rows)[number]>;
  const width = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(width[i]!)).join('  ');
  console.log(
    [`Flite (slt) through Silero, mark ${MARK_MS} ms:`, line(columns), ...rows.map((r) => line(columns.map((c) => String(r[c]))))].join('\n'),
  );
});

afterAll(async () => {
  await closeSpeech();
  await vad.close();
});

describe(`voiced time separates backchannels from a real interruption (mark ${MARK_MS} ms, real Silero on Flite speech)`, () => {
  for (const text of BACKCHANNELS) {
    it(`${JSON.stringify(text)} is one utterance with voicedMs < ${MARK_MS} and no vad.voiced`, () => {
      const { events } = results.get(text)!;
      checkEventGrammar(events);
      expect(of(events, 'vad.speechStart')).toHaveLength(1);
      const ends = of(events, 'vad.speechEnd');
      expect(ends).toHaveLength(1);
      expect(ends[0]!.voicedMs).toBeGreaterThan(0);
      expect(ends[0]!.voicedMs).toBeLessThan(MARK_MS);
      expect(ends[0]!.voicedMs).toBeLessThanOrEqual(ends[0]!.durationMs);
      expect(of(events, 'vad.voiced')).toEqual([]);
    });
  }

  it(`the interruption is one utterance with voicedMs ≥ 900, and vad.voiced for ${MARK_MS} comes while it is spoken`, () => {
    const { events } = results.get(INTERRUPTION)!;
    checkEventGrammar(events);
    const [start, ...moreStarts] = of(events, 'vad.speechStart');
    const [end, ...moreEnds] = of(events, 'vad.speechEnd');
    expect(moreStarts).toEqual([]);
    expect(moreEnds).toEqual([]);
    expect(end!.voicedMs).toBeGreaterThanOrEqual(900);
    const voiced = events.filter((e) => e.type === 'vad.voiced');
    expect(voiced).toHaveLength(1);
    const mark = voiced[0]!.event as Of<'vad.voiced'>;
    expect(mark.voicedMs).toBe(608); // the first whole window at or past 600 ms
    // sent as soon as the window that reached it was scored, long before the end of the turn
    expect(voiced[0]!.emittedAtMs).toBe(mark.atMs);
    expect(mark.atMs - start!.atMs).toBeGreaterThanOrEqual(MARK_MS);
    expect(mark.atMs).toBeLessThan(end!.atMs);
  });

  it(`a 250 ms cough-like noise burst starts no turn, or only one with voicedMs < ${MARK_MS}`, () => {
    const { events } = results.get(NOISE)!;
    checkEventGrammar(events);
    for (const end of of(events, 'vad.speechEnd')) expect(end.voicedMs).toBeLessThan(MARK_MS);
    expect(of(events, 'vad.voiced')).toEqual([]);
  });

  it('the noise burst is deterministic per seed, loud and short', () => {
    const burst = noiseBurst(250, 7);
    expect(burst.length).toBe(4000);
    expect(Array.from(noiseBurst(250, 7))).toEqual(Array.from(burst));
    expect(Array.from(noiseBurst(250, 8))).not.toEqual(Array.from(burst));
    expect(Math.max(...burst.map(Math.abs))).toBeCloseTo(0.5, 5);
    // fast attack, exponential decay: the last 50 ms are far quieter than the first 50 ms
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((n, x) => n + x * x, 0) / a.length);
    expect(rms(burst.subarray(3200))).toBeLessThan(rms(burst.subarray(0, 800)) / 5);
  });
});
