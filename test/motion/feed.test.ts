import { describe, expect, it } from 'vitest';
import { avatarAudio, avatarFrames, avatarInterrupt, feedFromMotion, pcmToBase64, toDemoShape } from '../../src/motion/feed.js';
import { MotionAnimator } from '../../src/motion/local-server/animator.js';
import { speech } from './helpers.js';

describe('client feed', () => {
  it('avatar.audio carries little-endian PCM16 as base64 with the conversation id', () => {
    const message = avatarAudio({ pcm: Int16Array.of(1, -2, 256), isLast: false, conversationId: 'r1' });
    expect(message).toEqual({ type: 'avatar.audio', audio: Buffer.from([1, 0, 0xfe, 0xff, 0, 1]).toString('base64'), isLast: false, conversationId: 'r1' });
    expect(pcmToBase64(new Int16Array(0))).toBe('');
  });

  it('avatar.frames base64-encodes each envelope byte for byte, even from a subarray', () => {
    const backing = Uint8Array.of(9, 9, 8, 5, 0x12, 9);
    const message = avatarFrames({ frames: [backing.subarray(2, 5)], isLast: true, conversationId: 'r1' });
    expect(message).toEqual({ type: 'avatar.frames', frames: [Buffer.from([8, 5, 0x12]).toString('base64')], isLast: true, conversationId: 'r1' });
  });

  it('maps to the official demo shapes avatar_audio / avatar_frames / interrupt', () => {
    expect(toDemoShape(avatarAudio({ pcm: Int16Array.of(1), isLast: true, conversationId: 'c' }))).toEqual({ type: 'avatar_audio', audio: 'AQA=', isLast: true });
    expect(toDemoShape(avatarFrames({ frames: [Uint8Array.of(1)], isLast: false, conversationId: 'c' }))).toEqual({ type: 'avatar_frames', frames: ['AQ=='], isLast: false });
    expect(toDemoShape(avatarInterrupt('barge_in'))).toEqual({ type: 'interrupt', reason: 'barge_in' });
  });

  it('feedFromMotion turns link events into feed messages and ignores state/error events', () => {
    expect(feedFromMotion({ type: 'motion.interrupted' }, 'user_speech')).toEqual({ type: 'avatar.interrupt', reason: 'user_speech' });
    expect(feedFromMotion({ type: 'motion.state', state: 'ready' })).toBeUndefined();
    expect(feedFromMotion({ type: 'motion.error', error: new Error('x'), fatal: false })).toBeUndefined();
    expect(
      feedFromMotion({ type: 'motion.audio', conversationId: 'c', pcm: Int16Array.of(1), sampleRate: 16000, audio: Uint8Array.of(1, 0), format: 'pcm_s16le', isLast: true }),
    ).toMatchObject({ type: 'avatar.audio', conversationId: 'c', audio: 'AQA=' });
    // With ogg_opus the feed carries the Ogg bytes as sent, not the PCM they were encoded from.
    const ogg = Uint8Array.from(Buffer.from('OggS\0\x02', 'latin1'));
    expect(
      feedFromMotion({ type: 'motion.audio', conversationId: 'c', pcm: Int16Array.of(1, 2, 3), sampleRate: 16000, audio: ogg, format: 'ogg_opus', isLast: false }),
    ).toEqual({ type: 'avatar.audio', audio: Buffer.from(ogg).toString('base64'), isLast: false, conversationId: 'c' });
  });
});

describe('local Motion Server animator', () => {
  it('one keyframe per 40 ms of audio; the jaw opens with loudness and closes in silence', () => {
    const animator = new MotionAnimator({ sampleRate: 16000 });
    const loud = animator.push(speech(0.5));
    const silent = animator.push(new Int16Array(8000));
    expect(loud).toHaveLength(12); // 0.5 s → 12 full windows, the rest waits for more audio
    expect(silent).toHaveLength(13);
    expect(animator.flush()).toHaveLength(0);
    expect(Math.max(...loud.map((k) => k.jawPose[0] ?? 0))).toBeGreaterThan(0.15);
    expect(silent.at(-1)?.jawPose[0]).toBeLessThan(0.01);
    const frame = loud[0];
    expect(frame && [frame.translation.length, frame.rotation.length, frame.neckPose.length, frame.jawPose.length, frame.eyePose.length, frame.eyeLid.length, frame.expression.length]).toEqual([3, 3, 3, 3, 6, 2, 100]);
  });

  it('fricative-like noise raises the teeth coefficient over the open-mouth one', () => {
    const animator = new MotionAnimator({ sampleRate: 16000 });
    let seed = 7;
    const hiss = new Int16Array(16000).map(() => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return ((seed >>> 16) % 16000) - 8000;
    });
    const frames = animator.push(hiss);
    const last = frames.at(-1);
    expect((last?.expression[1] ?? 0) > (last?.expression[0] ?? 0)).toBe(true);
  });

  it('blinks every 2.5–5 s on both eyelids', () => {
    const animator = new MotionAnimator({ sampleRate: 16000, seed: 3 });
    const frames = animator.push(new Int16Array(16000 * 12));
    const closed = frames.map((k, i) => ((k.eyeLid[0] ?? 0) >= 1 ? i : -1)).filter((i) => i >= 0);
    const blinks = closed.filter((i, n) => n === 0 || i - (closed[n - 1] ?? 0) > 3);
    expect(blinks.length).toBeGreaterThanOrEqual(2);
    expect(blinks.length).toBeLessThanOrEqual(5);
    expect(frames.every((k) => k.eyeLid[0] === k.eyeLid[1])).toBe(true);
  });
});
