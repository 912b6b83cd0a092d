/**
 * The inbound audio rate rule (src/transport/inbound-rate.ts), in explicit time: a microphone's
 * audio always passes, a catch-up burst passes, a sustained excess is dropped and then refused.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { InboundRateMeter, type InboundVerdict } from '../../src/transport/inbound-rate.js';

/** Feeds `frames` frames of `frameMs` audio, one every `everyMs` of wall time from `startMs`; the verdicts in order. */
function feed(meter: InboundRateMeter, frames: number, frameMs: number, everyMs: number, startMs = 0): InboundVerdict[] {
  const verdicts: InboundVerdict[] = [];
  for (let i = 0; i < frames; i++) verdicts.push(meter.admit(frameMs, startMs + i * everyMs));
  return verdicts;
}

const count = (verdicts: InboundVerdict[], verdict: InboundVerdict): number => verdicts.filter((v) => v === verdict).length;

describe('InboundRateMeter', () => {
  it('takes a real-time stream of 20 ms frames for ten minutes without dropping one', () => {
    const meter = new InboundRateMeter();
    const verdicts = feed(meter, 30_000, 20, 20);
    expect(count(verdicts, 'accept')).toBe(30_000);
    expect(meter.stats).toEqual({ droppedFrames: 0, droppedMs: 0 });
  });

  it('takes audio at exactly the default 1.5 × real time, sustained', () => {
    const meter = new InboundRateMeter();
    // 30 ms of audio every 20 ms of wall time, for a minute.
    expect(count(feed(meter, 3000, 30, 20), 'accept')).toBe(3000);
  });

  it('takes a 2 s catch-up burst after a stalled socket whole, then real time again', () => {
    const meter = new InboundRateMeter();
    const before = feed(meter, 500, 20, 20); // 10 s of live audio
    // The socket stalls for 2 s, then the 100 frames held up arrive in the same millisecond.
    const burst = feed(meter, 100, 20, 0, 12_000);
    const after = feed(meter, 500, 20, 20, 12_020);
    expect([...before, ...burst, ...after].every((v) => v === 'accept')).toBe(true);
  });

  it('drops a sustained 2 × excess, reports its first drop once, and refuses it after refuseAfterMs', () => {
    const meter = new InboundRateMeter();
    // 40 ms of audio every 20 ms: the 2 s burst lasts 4 s of wall time (0.5 ms of credit lost per ms), then frames are dropped.
    const verdicts = feed(meter, 500, 40, 20);
    const firstDrop = verdicts.indexOf('throttle');
    const refusedAt = verdicts.indexOf('refuse');
    expect(verdicts.slice(0, firstDrop).every((v) => v === 'accept')).toBe(true);
    expect(firstDrop * 20).toBeGreaterThanOrEqual(3900);
    expect(firstDrop * 20).toBeLessThanOrEqual(4100);
    expect(count(verdicts, 'throttle')).toBe(1);
    // Between the first drop and the refusal: the rate's share is still taken, the rest dropped.
    const middle = verdicts.slice(firstDrop + 1, refusedAt);
    expect(count(middle, 'accept')).toBeGreaterThan(0);
    expect(count(middle, 'drop')).toBeGreaterThan(0);
    expect((refusedAt - firstDrop) * 20).toBeGreaterThanOrEqual(3000);
    expect((refusedAt - firstDrop) * 20).toBeLessThan(3100);
    // Refused for good: nothing more is taken.
    expect(verdicts.slice(refusedAt).every((v) => v === 'refuse')).toBe(true);
    expect(meter.admit(1, 100_000)).toBe('refuse');
  });

  it('a one-off flood is dropped but not refused; the next excess episode is reported again', () => {
    const meter = new InboundRateMeter({ refuseAfterMs: 3000 });
    const flood = feed(meter, 1000, 20, 0); // 20 s of audio in one instant
    expect(count(flood, 'accept')).toBe(100); // the 2 s burst
    expect(count(flood, 'throttle')).toBe(1);
    expect(count(flood, 'drop')).toBe(899);
    // Back to real time: the bucket refills and the episode ends after a second without drops.
    expect(feed(meter, 250, 20, 20, 20).every((v) => v === 'accept')).toBe(true);
    const second = feed(meter, 1000, 20, 0, 10_000);
    expect(second).toContain('throttle');
    expect(second).not.toContain('refuse');
    expect(meter.stats.droppedFrames).toBeGreaterThan(899);
  });

  it('refuses bad options with a ConfigError naming the field', () => {
    expect(() => new InboundRateMeter({ maxRate: 0.5 })).toThrow(ConfigError);
    expect(() => new InboundRateMeter({ burstMs: -1 })).toThrow(/inboundRate\.burstMs/);
    expect(() => new InboundRateMeter({ refuseAfterMs: Number.NaN })).toThrow(/inboundRate\.refuseAfterMs/);
  });
});
