import { describe, expect, it } from 'vitest';
import { RtpSequencer, isNewerSequence, sequenceGap } from '../../src/protocol/index.js';

describe('RtpSequencer', () => {
  it('advances sequence by one and timestamp by the frame size while frames keep coming', () => {
    const sequencer = new RtpSequencer({ random: () => 0.5 });
    const first = sequencer.next(960, 0);
    const second = sequencer.next(960, 20);
    const third = sequencer.next(960, 40);
    expect(first.marker).toBe(true);
    expect([second.marker, third.marker]).toEqual([false, false]);
    expect(second.sequenceNumber).toBe((first.sequenceNumber + 1) & 0xffff);
    expect(third.timestamp - second.timestamp).toBe(960);
  });

  it('marks the first packet after silence and advances the timestamp by the real gap', () => {
    const sequencer = new RtpSequencer({ random: () => 0 });
    sequencer.next(960, 0);
    const afterPause = sequencer.next(960, 1000);
    expect(afterPause.marker).toBe(true);
    expect(afterPause.timestamp).toBe(48_000);
    expect(afterPause.sequenceNumber).toBe(1);
  });

  it('wraps sequence numbers and timestamps', () => {
    const sequencer = new RtpSequencer({ random: () => 0.99999999999 });
    const first = sequencer.next(960, 0);
    const second = sequencer.next(960, 20);
    expect(first.sequenceNumber).toBe(0xffff);
    expect(second.sequenceNumber).toBe(0);
    expect(second.timestamp).toBe((first.timestamp + 960) >>> 0);
    expect(isNewerSequence(0, 0xffff)).toBe(true);
    expect(isNewerSequence(0xffff, 0)).toBe(false);
    expect(sequenceGap(0xfffe, 1)).toBe(2);
  });
});
