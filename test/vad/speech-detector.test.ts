import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_VAD_CONFIG, msToWindows, resolveVadConfig, type VadConfig } from '../../src/vad/config.js';
import { SpeechDetector, voicedMarkWindows, type VadSpeechEvent } from '../../src/vad/speech-detector.js';

type Seen = VadSpeechEvent & { at: number };

/** Runs a probability sequence; window k is filled with the value k so audio can be traced. */
function detect(probabilities: number[], config: Partial<VadConfig> = {}, flush = false, voicedMarksMs: readonly number[] = []): Seen[] {
  const events: Seen[] = [];
  const detector: SpeechDetector = new SpeechDetector(
    resolveVadConfig(config),
    (e) => events.push({ ...e, at: detector.positionMs }),
    voicedMarksMs,
  );
  probabilities.forEach((p, k) => detector.process(p, new Float32Array(512).fill(k)));
  if (flush) detector.flush();
  return events;
}

const speech = (n: number, p = 0.9) => Array<number>(n).fill(p);
const silence = (n: number) => Array<number>(n).fill(0.05);
const types = (events: readonly Seen[]) => events.map((e) => e.type);
const only = <T extends VadSpeechEvent['type']>(events: readonly Seen[], type: T) =>
  events.filter((e): e is Extract<Seen, { type: T }> => e.type === type);
/** The event minus the utterance audio, for exact comparisons. */
const plain = (e: Seen) => (e.type === 'vad.speechEnd' ? { ...e, audio: undefined } : e);

describe('SpeechDetector', () => {
  // Found by the session property test: with a silence of 8 windows between two utterances and
  // 10 windows of padding, the second utterance's audio repeated the end of the first one.
  it('the prefix padding of an utterance never reaches back into the previous one', () => {
    const events = detect([...speech(4), ...silence(8), ...speech(4), ...silence(20)], { minSilenceMs: 256 });
    const ends = only(events, 'vad.speechEnd');
    expect(ends).toHaveLength(2);
    expect(Array.from(ends[0]!.audio.samples.filter((_, i) => i % 512 === 0))).toEqual([0, 1, 2, 3]);
    // windows 4..11 are the silence between; 12..15 the second utterance
    expect(Array.from(ends[1]!.audio.samples.filter((_, i) => i % 512 === 0))).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('a blip shorter than minSpeechMs is a provisional onset that is cancelled (no speechStart)', () => {
    const events = detect([...silence(5), 0.9, ...silence(30)]);
    expect(events).toEqual([
      { type: 'vad.onset', atMs: 160, at: 192 },
      // decided by window 6 (the first silent one): atMs is its end
      { type: 'vad.onsetCancelled', atMs: 224, at: 224 },
    ]);
  });

  it('a provisional onset is sent when its window is scored, then confirmed by speechStart after minSpeechMs', () => {
    const events = detect([...silence(5), ...speech(3), ...silence(20)]);
    expect(events.slice(0, 2)).toEqual([
      { type: 'vad.onset', atMs: 160, at: 192 },
      { type: 'vad.speechStart', atMs: 160, voicedMs: 64, at: 224 },
    ]);
    expect(types(events)).not.toContain('vad.onsetCancelled');
  });

  it('a window between negativeThreshold and threshold keeps a pending onset going', () => {
    const events = detect([...silence(2), 0.9, 0.4, ...silence(20)]);
    expect(only(events, 'vad.speechStart')).toEqual([{ type: 'vad.speechStart', atMs: 64, voicedMs: 64, at: 128 }]);
  });

  it('a window below threshold does not start an onset, even above negativeThreshold', () => {
    expect(detect([...silence(2), ...speech(10, 0.45), ...silence(20)])).toEqual([]);
  });

  it('speechEnd fires after minSilenceMs of consecutive silence; atMs is the end of the last speech window', () => {
    const events = detect([...silence(2), ...speech(10), ...silence(15)]);
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechEnd']);
    expect(events[3]).toMatchObject({ atMs: 384, durationMs: 320, voicedMs: 320, at: 384 + 480 });
  });

  it('pause then speechEnd: the pause comes pauseMs into the silence, the end minSilenceMs into it', () => {
    const events = detect([...silence(2), ...speech(10), ...silence(20)]);
    const [pause, end] = [only(events, 'vad.speechPause'), only(events, 'vad.speechEnd')];
    expect(pause).toEqual([{ type: 'vad.speechPause', atMs: 384, voicedMs: 320, silenceMs: 192, at: 384 + 192 }]);
    expect(end).toHaveLength(1);
    expect(end[0]).toMatchObject({ atMs: 384, at: 384 + 480 });
    expect(events.indexOf(pause[0]!)).toBeLessThan(events.indexOf(end[0]!));
  });

  it('pause / resume inside an utterance: a silence of pauseMs..minSilenceMs pauses, the next voiced window resumes', () => {
    // windows 0-9 voiced, 10-17 silent (8 = 256 ms: ≥ pause, < minSilence), 18-22 voiced, then the end
    const events = detect([...speech(10), ...silence(8), ...speech(5), ...silence(15)]);
    expect(events.map(plain)).toEqual([
      { type: 'vad.onset', atMs: 0, at: 32 },
      { type: 'vad.speechStart', atMs: 0, voicedMs: 64, at: 64 },
      { type: 'vad.speechPause', atMs: 320, voicedMs: 320, silenceMs: 192, at: 320 + 192 },
      { type: 'vad.speechResume', atMs: 576, voicedMs: 352, at: 608 },
      { type: 'vad.speechPause', atMs: 736, voicedMs: 480, silenceMs: 192, at: 736 + 192 },
      { type: 'vad.speechEnd', atMs: 736, durationMs: 736, voicedMs: 480, silenceMs: 480, audio: undefined, at: 736 + 480 },
    ]);
  });

  it('a dip shorter than pauseMs sends nothing', () => {
    const events = detect([...speech(10), ...silence(5), ...speech(5), ...silence(3), ...speech(5), ...silence(15)]);
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechEnd']);
    // the only pause is the final silence
    expect(only(events, 'vad.speechPause')[0]).toMatchObject({ atMs: 28 * 32 });
  });

  it('one speechPause per silence run, however long the run (until the end)', () => {
    const events = detect([...speech(5), ...silence(14), ...speech(5), ...silence(14), ...speech(3), ...silence(15)]);
    expect(types(events)).toEqual([
      'vad.onset',
      'vad.speechStart',
      'vad.speechPause',
      'vad.speechResume',
      'vad.speechPause',
      'vad.speechResume',
      'vad.speechPause',
      'vad.speechEnd',
    ]);
  });

  it('no speechPause during a pending onset (only onsetCancelled), and no speechResume without a pause', () => {
    const events = detect([...silence(3), 0.9, ...silence(10), ...speech(4), ...silence(4), ...speech(4), ...silence(15)]);
    expect(types(events)).toEqual(['vad.onset', 'vad.onsetCancelled', 'vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechEnd']);
  });

  it('windows between negativeThreshold and threshold keep speech going (hysteresis) and count as voiced', () => {
    const dips = [...speech(4), ...speech(20, 0.4), ...speech(2), ...silence(15)];
    const events = detect(dips);
    expect(only(events, 'vad.speechEnd')).toHaveLength(1);
    expect(only(events, 'vad.speechEnd')[0]).toMatchObject({ voicedMs: 26 * 32, durationMs: 26 * 32 });
    // changes only: 26 speech windows give no per-window events
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechEnd']);
  });

  it('voicedMs counts the voiced windows from the onset on, across pauses; pause windows do not count', () => {
    // 6 voiced (pending included), a 10-window pause, 0.4 windows (voiced), 1 silent window, 3 voiced
    const events = detect([...silence(4), ...speech(6), ...silence(10), ...speech(4, 0.4), 0.1, ...speech(3), ...silence(15)]);
    const end = only(events, 'vad.speechEnd')[0]!;
    expect(end.voicedMs).toBe((6 + 4 + 3) * 32);
    expect(end.durationMs).toBe((6 + 10 + 4 + 1 + 3) * 32);
    expect(only(events, 'vad.speechStart')[0]!.voicedMs).toBe(64);
    expect(only(events, 'vad.speechPause')[0]!.voicedMs).toBe(6 * 32);
    expect(only(events, 'vad.speechResume')[0]).toMatchObject({ atMs: (4 + 6 + 10) * 32, voicedMs: 7 * 32 });
  });

  it('a silence shorter than minSilenceMs does not split the turn', () => {
    const events = detect([...speech(5), ...silence(14), ...speech(5), ...silence(15)]);
    expect(types(events).filter((t) => t === 'vad.speechStart' || t === 'vad.speechEnd')).toEqual(['vad.speechStart', 'vad.speechEnd']);
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechResume', 'vad.speechPause', 'vad.speechEnd']);
  });

  it('the utterance audio starts prefixPaddingMs before the onset', () => {
    const events = detect([...silence(20), ...speech(5), ...silence(15)]);
    const end = only(events, 'vad.speechEnd')[0]!;
    const windows = end.audio.samples.length / 512;
    expect(windows).toBe(10 + 5);
    expect(end.audio.samples[0]).toBe(10); // window 10 = 320 ms before the onset at window 20
    expect(end.audio.samples.at(-1)).toBe(24);
  });

  it('maxSpeechMs ends a long turn', () => {
    const events = detect([...speech(40), ...silence(20)], { maxSpeechMs: 1000 });
    expect(types(events)).toEqual([
      'vad.onset',
      'vad.speechStart',
      'vad.speechEnd',
      'vad.onset',
      'vad.speechStart',
      'vad.speechPause',
      'vad.speechEnd',
    ]);
    expect(events[2]).toMatchObject({ durationMs: 32 * 32, voicedMs: 32 * 32 });
    expect(events[6]).toMatchObject({ durationMs: 8 * 32, voicedMs: 8 * 32 });
  });

  it('flush() closes an open turn at the end of the stream', () => {
    const events = detect([...speech(10)], {}, true);
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechEnd']);
    expect(events[2]).toMatchObject({ atMs: 320, voicedMs: 320 });
  });

  it('flush() during a pause ends the turn at the last voiced window', () => {
    const events = detect([...speech(10), ...silence(8)], {}, true);
    expect(types(events)).toEqual(['vad.onset', 'vad.speechStart', 'vad.speechPause', 'vad.speechEnd']);
    expect(events[3]).toMatchObject({ atMs: 320, voicedMs: 320, durationMs: 320 });
  });

  it('flush() cancels a pending onset at the end of the stream', () => {
    expect(detect([...silence(3), 0.9], {}, true)).toEqual([
      { type: 'vad.onset', atMs: 96, at: 128 },
      { type: 'vad.onsetCancelled', atMs: 128, at: 128 },
    ]);
  });

  it('pauseMs is configurable (rounded up to windows)', () => {
    const events = detect([...speech(10), ...silence(4), ...speech(2), ...silence(15)], { pauseMs: 100 });
    expect(only(events, 'vad.speechPause')[0]).toMatchObject({ atMs: 320, at: 320 + 128 });
    expect(only(events, 'vad.speechResume')).toHaveLength(1);
  });

  describe('voicedMarksMs', () => {
    it('each mark fires once per utterance, the first time voicedMs reaches it, and again in the next utterance', () => {
      const utterance = [...speech(3), ...silence(8), ...speech(5), ...silence(2), ...speech(6)];
      const events = detect([...utterance, ...silence(15), ...utterance, ...silence(15)], {}, false, [300, 100]);
      const voiced = only(events, 'vad.voiced');
      // 100 ms → 4 voiced windows (128 ms), 300 ms → 10 windows (320 ms); pause windows do not count
      const second = utterance.length + 15;
      expect(voiced).toEqual([
        { type: 'vad.voiced', atMs: (3 + 8 + 1) * 32, voicedMs: 128, at: (3 + 8 + 1) * 32 },
        { type: 'vad.voiced', atMs: (3 + 8 + 5 + 2 + 2) * 32, voicedMs: 320, at: (3 + 8 + 5 + 2 + 2) * 32 },
        { type: 'vad.voiced', atMs: (second + 12) * 32, voicedMs: 128, at: (second + 12) * 32 },
        { type: 'vad.voiced', atMs: (second + 20) * 32, voicedMs: 320, at: (second + 20) * 32 },
      ]);
      expect(types(events).filter((t) => t === 'vad.speechStart' || t === 'vad.speechEnd')).toHaveLength(4);
    });

    it('a mark is not reached by pause time: the utterance ends without it', () => {
      const events = detect([...speech(5), ...silence(10), ...speech(5), ...silence(15)], {}, false, [330]);
      expect(only(events, 'vad.voiced')).toEqual([]);
      expect(only(events, 'vad.speechEnd')[0]).toMatchObject({ voicedMs: 320, durationMs: 640 });
    });

    it('marks already reached at confirmation (0 or below included) give one vad.voiced right after speechStart', () => {
      const events = detect([...silence(2), ...speech(8), ...silence(15)], { minSpeechMs: 160 }, false, [0, -10, 64, 128]);
      expect(events.slice(0, 3)).toEqual([
        { type: 'vad.onset', atMs: 64, at: 96 },
        { type: 'vad.speechStart', atMs: 64, voicedMs: 160, at: 224 },
        { type: 'vad.voiced', atMs: 224, voicedMs: 160, at: 224 },
      ]);
      expect(only(events, 'vad.voiced')).toHaveLength(1);
    });

    it('never before speechStart: a mark reached by the pending windows waits for the confirmation', () => {
      const events = detect([...speech(1), ...silence(10), ...speech(4), ...silence(15)], {}, false, [32]);
      expect(types(events).slice(0, 5)).toEqual(['vad.onset', 'vad.onsetCancelled', 'vad.onset', 'vad.speechStart', 'vad.voiced']);
      expect(only(events, 'vad.voiced')).toHaveLength(1);
    });

    it('with minSpeechMs 0 a single window sends onset, speechStart and voiced, in that order', () => {
      const events = detect([...silence(1), ...speech(3), ...silence(15)], { minSpeechMs: 0 }, false, [0]);
      expect(events.slice(0, 3).map((e) => [e.type, e.at])).toEqual([
        ['vad.onset', 64],
        ['vad.speechStart', 64],
        ['vad.voiced', 64],
      ]);
    });

    it('resume comes before the voiced event of the same window', () => {
      const events = detect([...speech(5), ...silence(7), ...speech(3), ...silence(15)], {}, false, [192]);
      expect(types(events)).toEqual([
        'vad.onset',
        'vad.speechStart',
        'vad.speechPause',
        'vad.speechResume',
        'vad.voiced',
        'vad.speechPause',
        'vad.speechEnd',
      ]);
    });

    it('marks are validated and normalised to windows', () => {
      expect(Array.from(voicedMarkWindows([600, 0, 610, 600, -5, Number.POSITIVE_INFINITY]))).toEqual([0, 19, 20]);
      expect(() => voicedMarkWindows([Number.NaN])).toThrow(ConfigError);
      expect(() => voicedMarkWindows([Number.NaN])).toThrow(/vad.voicedMarksMs/);
    });
  });
});

describe('VAD config', () => {
  it('defaults are documented frame counts', () => {
    expect(DEFAULT_VAD_CONFIG).toMatchObject({ threshold: 0.5, negativeThreshold: 0.35, pauseMs: 192 });
    expect(msToWindows(DEFAULT_VAD_CONFIG.minSpeechMs)).toBe(2);
    expect(msToWindows(DEFAULT_VAD_CONFIG.minSilenceMs)).toBe(15);
    expect(msToWindows(DEFAULT_VAD_CONFIG.pauseMs)).toBe(6);
    expect(msToWindows(DEFAULT_VAD_CONFIG.prefixPaddingMs)).toBe(10);
    expect(msToWindows(200)).toBe(7);
    expect(resolveVadConfig()).toEqual(DEFAULT_VAD_CONFIG);
  });

  it('invalid settings are ConfigErrors naming the field', () => {
    expect(() => resolveVadConfig({ threshold: 1.5 })).toThrow(ConfigError);
    expect(() => resolveVadConfig({ threshold: 0.3 })).toThrow(/negativeThreshold/);
    expect(() => resolveVadConfig({ minSilenceMs: Number.NaN })).toThrow(/vad.minSilenceMs/);
  });

  it('pauseMs must be a duration of at least one window and shorter than minSilenceMs', () => {
    const field = (partial: Partial<VadConfig>) => {
      try {
        resolveVadConfig(partial);
      } catch (error) {
        return error instanceof ConfigError ? error.field : 'not a ConfigError';
      }
      return undefined;
    };
    expect(field({ pauseMs: 480 })).toBe('vad.pauseMs'); // = minSilenceMs
    expect(field({ pauseMs: 600 })).toBe('vad.pauseMs'); // > minSilenceMs
    expect(field({ pauseMs: 200, minSilenceMs: 160 })).toBe('vad.pauseMs');
    expect(field({ pauseMs: 470 })).toBe('vad.pauseMs'); // 15 windows, the same as minSilenceMs 480
    expect(field({ pauseMs: -1 })).toBe('vad.pauseMs');
    expect(field({ pauseMs: 0 })).toBe('vad.pauseMs');
    expect(field({ pauseMs: Number.NaN })).toBe('vad.pauseMs');
    expect(field({ pauseMs: Number.POSITIVE_INFINITY })).toBe('vad.pauseMs');
    expect(() => resolveVadConfig({ pauseMs: 480 })).toThrow(/vad.pauseMs: must be shorter than minSilenceMs/);
    expect(field({ pauseMs: 448 })).toBeUndefined(); // 14 windows < 15
    expect(field({ pauseMs: 32 })).toBeUndefined();
  });

  it('an unset pauseMs fits under a short minSilenceMs (one window less) instead of failing', () => {
    expect(resolveVadConfig({ minSilenceMs: 256 }).pauseMs).toBe(192);
    expect(resolveVadConfig({ minSilenceMs: 192 }).pauseMs).toBe(160);
    expect(resolveVadConfig({ minSilenceMs: 160 }).pauseMs).toBe(128);
    expect(resolveVadConfig({ minSilenceMs: 32 }).pauseMs).toBe(32);
  });
});
