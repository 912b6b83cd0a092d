import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { DEFAULT_VAD_CONFIG, msToWindows, resolveVadConfig, type VadConfig } from '../../src/vad/config.js';
import { SpeechDetector, type VadSpeechEvent } from '../../src/vad/speech-detector.js';

/** Runs a probability sequence; window k is filled with the value k so audio can be traced. */
function detect(probabilities: number[], config: Partial<VadConfig> = {}, flush = false) {
  const events: Array<VadSpeechEvent & { at: number }> = [];
  const detector: SpeechDetector = new SpeechDetector(resolveVadConfig(config), (e) => events.push({ ...e, at: detector.positionMs }));
  probabilities.forEach((p, k) => detector.process(p, new Float32Array(512).fill(k)));
  if (flush) detector.flush();
  return events;
}

const speech = (n: number) => Array<number>(n).fill(0.9);
const silence = (n: number) => Array<number>(n).fill(0.05);

describe('SpeechDetector', () => {
  it('a blip shorter than minSpeechMs starts nothing', () => {
    expect(detect([...silence(5), 0.9, ...silence(30)])).toEqual([]);
  });

  it('speechStart fires after minSpeechMs with atMs at the first speech window', () => {
    const events = detect([...silence(5), ...speech(3), ...silence(20)]);
    expect(events[0]).toMatchObject({ type: 'vad.speechStart', atMs: 160, at: 224 });
  });

  it('speechEnd fires after minSilenceMs of consecutive silence; atMs is the end of the last speech window', () => {
    const events = detect([...silence(2), ...speech(10), ...silence(15)]);
    expect(events.map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd']);
    expect(events[1]).toMatchObject({ atMs: 384, durationMs: 320, at: 384 + 480 });
  });

  it('windows between negativeThreshold and threshold keep speech going (hysteresis)', () => {
    const dips = [...speech(4), ...Array<number>(20).fill(0.4), ...speech(2), ...silence(15)];
    const events = detect(dips);
    expect(events.filter((e) => e.type === 'vad.speechEnd')).toHaveLength(1);
  });

  it('a silence shorter than minSilenceMs does not split the turn', () => {
    const events = detect([...speech(5), ...silence(14), ...speech(5), ...silence(15)]);
    expect(events.map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd']);
  });

  it('the utterance audio starts prefixPaddingMs before the onset', () => {
    const events = detect([...silence(20), ...speech(5), ...silence(15)]);
    const end = events[1] as Extract<VadSpeechEvent, { type: 'vad.speechEnd' }>;
    const windows = end.audio.samples.length / 512;
    expect(windows).toBe(10 + 5);
    expect(end.audio.samples[0]).toBe(10); // window 10 = 320 ms before the onset at window 20
    expect(end.audio.samples.at(-1)).toBe(24);
  });

  it('maxSpeechMs ends a long turn', () => {
    const events = detect([...speech(40), ...silence(20)], { maxSpeechMs: 1000 });
    expect(events.map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd', 'vad.speechStart', 'vad.speechEnd']);
    expect(events[1]).toMatchObject({ durationMs: 32 * 32 });
  });

  it('flush() closes an open turn at the end of the stream', () => {
    expect(detect([...speech(10)], {}, true).map((e) => e.type)).toEqual(['vad.speechStart', 'vad.speechEnd']);
  });
});

describe('VAD config', () => {
  it('defaults are documented frame counts', () => {
    expect(DEFAULT_VAD_CONFIG).toMatchObject({ threshold: 0.5, negativeThreshold: 0.35 });
    expect(msToWindows(DEFAULT_VAD_CONFIG.minSpeechMs)).toBe(2);
    expect(msToWindows(DEFAULT_VAD_CONFIG.minSilenceMs)).toBe(15);
    expect(msToWindows(DEFAULT_VAD_CONFIG.prefixPaddingMs)).toBe(10);
    expect(msToWindows(200)).toBe(7);
  });

  it('invalid settings are ConfigErrors naming the field', () => {
    expect(() => resolveVadConfig({ threshold: 1.5 })).toThrow(ConfigError);
    expect(() => resolveVadConfig({ threshold: 0.3 })).toThrow(/negativeThreshold/);
    expect(() => resolveVadConfig({ minSilenceMs: Number.NaN })).toThrow(/vad.minSilenceMs/);
  });
});
