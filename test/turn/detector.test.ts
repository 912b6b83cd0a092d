import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChatMessage } from '../../src/providers/types.js';
import { clampProbability, DEFAULT_ENDPOINTING_SETTINGS, endpointingDelayMs } from '../../src/turn/index.js';
import { scriptedTurnDetector, turnInput } from './doubles.js';

describe('endpointingDelayMs', () => {
  const settings = DEFAULT_ENDPOINTING_SETTINGS;

  it('defaults to 200–1500 ms', () => {
    expect(settings).toEqual({ minEndpointingMs: 200, maxEndpointingMs: 1500 });
  });

  it.each([
    [1, 200],
    [0.85, 395],
    [0.5, 850],
    [0.3, 1110],
    [0, 1500],
  ])('p = %d waits %d ms after the audio edge', (p, ms) => {
    expect(endpointingDelayMs(p, settings)).toBe(ms);
  });

  it('is linear and never increases with p', () => {
    let previous = Infinity;
    for (let i = 0; i <= 100; i += 1) {
      const delay = endpointingDelayMs(i / 100, { minEndpointingMs: 300, maxEndpointingMs: 1300 });
      expect(delay).toBe(Math.round(1300 - 10 * i));
      expect(delay).toBeLessThanOrEqual(previous);
      previous = delay;
    }
  });

  it.each([
    [1.7, 200],
    [Infinity, 200],
    [-0.2, 1500],
    [-Infinity, 1500],
    [NaN, 1500],
  ])('clamps p = %d to [0, 1] (NaN counts as 0): %d ms', (p, ms) => {
    expect(endpointingDelayMs(p, settings)).toBe(ms);
  });

  it('answers whole ms', () => {
    expect(endpointingDelayMs(1 / 3, { minEndpointingMs: 0, maxEndpointingMs: 1000 })).toBe(667);
  });

  it('min = max waits that long whatever p is', () => {
    const fixed = { minEndpointingMs: 700, maxEndpointingMs: 700 };
    expect([0, 0.5, 1, NaN].map((p) => endpointingDelayMs(p, fixed))).toEqual([700, 700, 700, 700]);
  });

  it('clampProbability is the same clamp', () => {
    expect([NaN, -1, 0, 0.42, 1, 2].map(clampProbability)).toEqual([0, 0, 0, 0.42, 1, 1]);
  });
});

describe('scriptedTurnDetector (test double)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers the scripted probabilities in order, then repeats the last one', () => {
    const detector = scriptedTurnDetector([0.2, 0.9]);
    const answers = [0, 1, 2, 3].map(() => detector.endOfTurnProbability(turnInput()));
    expect(answers).toEqual([0.2, 0.9, 0.9, 0.9]);
    expect(detector.calls.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(detector.name).toBe('scripted');
  });

  it('records each input as it was at the call', () => {
    const detector = scriptedTurnDetector([0.5], { name: 'model-under-test' });
    const history: ChatMessage[] = [{ role: 'assistant', content: 'For how many?' }];
    const samples = new Float32Array([0.1, 0.2, 0.3]);
    const controller = new AbortController();
    detector.endOfTurnProbability({ text: 'four', audio: { samples, sampleRate: 16000 }, history, signal: controller.signal });
    samples.fill(0);
    history.push({ role: 'user', content: 'four' });

    const [call] = detector.calls;
    expect(detector.name).toBe('model-under-test');
    expect(call?.text).toBe('four');
    expect(Array.from(call?.audio.samples ?? [])).toEqual([0.1, 0.2, 0.3].map(Math.fround));
    expect(call?.audio.sampleRate).toBe(16000);
    expect(call?.history).toEqual([{ role: 'assistant', content: 'For how many?' }]);
    expect(call?.signal).toBe(controller.signal);
  });

  it('a function script sees the input and the call index, and may fail', async () => {
    const detector = scriptedTurnDetector((input, index) => {
      if (index === 1) throw new Error('model failed');
      return input.text.endsWith('for') ? 0 : 1;
    });
    expect(detector.endOfTurnProbability(turnInput({ text: 'a table for' }))).toBe(0);
    expect(() => detector.endOfTurnProbability(turnInput())).toThrow('model failed');
    await expect(scriptedTurnDetector(() => Promise.resolve(0.4)).endOfTurnProbability(turnInput())).resolves.toBe(0.4);
    expect(detector.calls).toHaveLength(2);
  });

  it('delayMs answers after the delay, on the (fake) clock', async () => {
    vi.useFakeTimers();
    const detector = scriptedTurnDetector([0.7], { delayMs: 150 });
    let answer: number | undefined;
    void Promise.resolve(detector.endOfTurnProbability(turnInput())).then((p) => (answer = p));
    await vi.advanceTimersByTimeAsync(149);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(answer).toBe(0.7);
  });

  it('delayMs: an abort rejects with the signal’s reason and the script is not consulted', async () => {
    vi.useFakeTimers();
    const script = vi.fn(() => 0.7);
    const detector = scriptedTurnDetector(script, { delayMs: 150 });
    const controller = new AbortController();
    const pending = detector.endOfTurnProbability(turnInput({ signal: controller.signal }));
    controller.abort(new Error('user spoke again'));
    await expect(pending).rejects.toThrow('user spoke again');
    await vi.advanceTimersByTimeAsync(500);
    expect(script).not.toHaveBeenCalled();
    expect(detector.calls[0]?.signal.aborted).toBe(true);
  });

  it('refuses an empty script', () => {
    expect(() => scriptedTurnDetector([])).toThrow(/at least one probability/);
  });
});
