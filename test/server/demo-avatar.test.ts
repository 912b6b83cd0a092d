/**
 * The demo page's avatar script (src/server/demo-avatar.ts), run in Node as the browser runs it:
 * its envelope reader against the real codec's bytes, and its schedule against a playout clock.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/motion/protocol/codec.js';
import { FLAME_SIZES, type FlameKeyframe } from '../../src/motion/protocol/types.js';
import { AVATAR_SCRIPT } from '../../src/server/demo-avatar.js';

interface Pose {
  readonly jaw: number;
  readonly lidL: number;
  readonly lidR: number;
  readonly pitch: number;
  readonly yaw: number;
  readonly roll: number;
  readonly gazeX: number;
  readonly gazeY: number;
}
interface Animation {
  readonly reqId: string;
  readonly end: boolean;
  readonly keyframes: Pose[];
}
interface Clock {
  readonly replyId: string | null;
  readonly playedMs: number;
  readonly at: number;
  readonly playing: boolean;
}
interface Shown {
  readonly pose: Pose;
  readonly keyframe: number;
  readonly conversation: string;
  readonly active: boolean;
}
interface Timeline {
  readonly stats: { keyframes: number; dropped: number };
  audioStart(replyId: string): void;
  audio(id: string): void;
  frames(id: string, keyframes: readonly Pose[], isLast: boolean): void;
  clock(report: Clock): void;
  interrupt(): void;
  poseAt(t: number, held: boolean): Shown;
}

const script = new Function(`${AVATAR_SCRIPT}\nreturn { decodeAnimation, createAvatarTimeline, REST };`) as () => {
  decodeAnimation(bytes: Uint8Array): Animation | null;
  createAvatarTimeline(options?: { easeMs?: number }): Timeline;
  REST: Pose;
};
const { decodeAnimation, createAvatarTimeline, REST } = script();

function keyframe(jaw: number, lid = 0, rotation: readonly number[] = [0, 0, 0]): FlameKeyframe {
  const zeros = (n: number): number[] => Array.from({ length: n }, () => 0);
  return {
    translation: zeros(FLAME_SIZES.translation),
    rotation,
    neckPose: [0.01, 0.02, 0],
    jawPose: [jaw, 0, 0],
    eyePose: [0.1, 0.2, 0, 0.1, 0.2, 0],
    eyeLid: [lid, lid],
    expression: zeros(FLAME_SIZES.expression).map((_, i) => (i < 4 ? 0.5 : 0)),
  };
}

function envelope(keyframes: readonly FlameKeyframe[], end = false): Uint8Array {
  return encodeMessage({ type: 'server.responseAnimation', connectionId: 'c-1', reqId: '20261201120000_abcdefghijkl', end, avatarId: 'avatar-1', keyframes });
}

/** A pose whose jaw is `jaw` (the rest of it at rest). */
const jawOnly = (jaw: number): Pose => ({ ...REST, jaw });

describe('the demo page reads Motion Server envelopes', () => {
  it('decodes jaw, eyelids, head rotation (rotation + neck) and gaze from the codec bytes', () => {
    const out = decodeAnimation(envelope([keyframe(0.25, 1, [0.03, -0.04, 0.01]), keyframe(0.1)], true));
    expect(out?.reqId).toBe('20261201120000_abcdefghijkl');
    expect(out?.end).toBe(true);
    expect(out?.keyframes).toHaveLength(2);
    const [first] = out?.keyframes ?? [];
    expect(first?.jaw).toBeCloseTo(0.25, 6);
    expect([first?.lidL, first?.lidR]).toEqual([1, 1]);
    expect(first?.pitch).toBeCloseTo(0.04, 6);
    expect(first?.yaw).toBeCloseTo(-0.02, 6);
    expect(first?.roll).toBeCloseTo(0.01, 6);
    expect(first?.gazeX).toBeCloseTo(0.2, 6);
    expect(first?.gazeY).toBeCloseTo(0.1, 6);
    expect(out?.keyframes[1]?.jaw).toBeCloseTo(0.1, 6);
  });

  it('reads unpacked floats and skips fields it does not know; other message types are not animation', () => {
    // Flame { jaw_pose: 0.5 (unpacked, wire type 5), eye_lid: 0.75, unknown field 9 varint }.
    const float = (v: number): number[] => [...new Uint8Array(Float32Array.of(v).buffer)];
    const flame = [(4 << 3) | 5, ...float(0.5), (6 << 3) | 5, ...float(0.75), (9 << 3) | 0, 42];
    const animation = [(1 << 3) | 2, flame.length, ...flame];
    const response = [(2 << 3) | 2, 1, 0x72, (4 << 3) | 2, animation.length, ...animation];
    const message = Uint8Array.from([(1 << 3) | 0, 5, (6 << 3) | 2, response.length, ...response, (15 << 3) | 2, 2, 7, 7]);
    const out = decodeAnimation(message);
    expect(out?.reqId).toBe('r');
    expect(out?.keyframes[0]?.jaw).toBe(0.5);
    // One eye_lid value: both eyes.
    expect([out?.keyframes[0]?.lidL, out?.keyframes[0]?.lidR]).toEqual([0.75, 0.75]);
    expect(decodeAnimation(encodeMessage({ type: 'client.interrupt', reqId: 'r' }))).toBeNull();
    expect(() => decodeAnimation(envelope([keyframe(0.2)]).subarray(0, 30))).toThrow();
  });
});

describe('the demo page schedules keyframes against the audio clock', () => {
  const frames = Array.from({ length: 50 }, (_, k) => jawOnly(k / 100)); // keyframe k: jaw k/100, 2 s of audio

  function started(): Timeline {
    const timeline = createAvatarTimeline();
    timeline.audioStart('1');
    timeline.frames('conv-1', frames, true); // all of them at once, long before their audio plays
    return timeline;
  }

  it('shows the keyframe of the audio being heard, not the last one received', () => {
    const timeline = started();
    // Nothing played yet: the face rests.
    timeline.clock({ replyId: '1', playedMs: 0, at: 10, playing: true });
    expect(timeline.poseAt(9.99, false).keyframe).toBe(-1);
    expect(timeline.poseAt(9.99, false).pose).toEqual(REST);
    // The reply's first sample is heard at t = 10 s; 210 ms later, keyframe 5.
    expect(timeline.poseAt(10.21, false)).toMatchObject({ keyframe: 5, conversation: 'conv-1' });
    // Between keyframes 4 and 5 the pose is interpolated.
    expect(timeline.poseAt(10.18, false).pose.jaw).toBeCloseTo(0.045, 6);
    // The worklet reports every 100 ms of audio; the clock runs on at most 250 ms past a report.
    expect(timeline.poseAt(11, false).keyframe).toBe(6);
    // A later report re-anchors it: 1000 ms rendered, the last of it heard at t = 11.2 s.
    timeline.clock({ replyId: '1', playedMs: 1000, at: 11.2, playing: true });
    expect(timeline.poseAt(11.1, false).keyframe).toBe(22);
    expect(timeline.poseAt(11.2, false).keyframe).toBe(25);
  });

  it('a conversation whose frames come before its reply audio starts waits for it', () => {
    const timeline = createAvatarTimeline();
    timeline.audio('conv-2');
    timeline.frames('conv-2', frames, false);
    timeline.clock({ replyId: '7', playedMs: 200, at: 3, playing: true });
    expect(timeline.poseAt(3, false).keyframe).toBe(-1); // reply 7 has not started: not its avatar
    timeline.audioStart('7');
    expect(timeline.poseAt(3.01, false)).toMatchObject({ keyframe: 5, conversation: 'conv-2' });
  });

  it('the server pausing the reply holds the pose; the audio ending eases the face back to rest', () => {
    const timeline = started();
    timeline.clock({ replyId: '1', playedMs: 700, at: 0.7, playing: true });
    const speaking = timeline.poseAt(0.81, false);
    expect(speaking.keyframe).toBe(20);
    // interrupted.*: the playout stops, the face keeps its pose.
    timeline.clock({ replyId: '1', playedMs: 800, at: 0.8, playing: false });
    expect(timeline.poseAt(1.5, true).pose).toEqual(speaking.pose);
    // The reply played to its end: 250 ms later the face is at rest and nothing more is scheduled.
    timeline.clock({ replyId: '1', playedMs: 2000, at: 2, playing: false });
    const easing = timeline.poseAt(2.1, false);
    expect(easing.pose.jaw).toBeGreaterThan(0);
    expect(easing.pose.jaw).toBeLessThan(0.49);
    expect(timeline.poseAt(2.4, false)).toMatchObject({ pose: REST, keyframe: -1, active: false });
  });

  it('a barge-in resets the face at once and drops the late frames of the interrupted conversation', () => {
    const timeline = started();
    timeline.clock({ replyId: '1', playedMs: 400, at: 1, playing: true });
    expect(timeline.poseAt(1, false).keyframe).toBe(10);
    expect(timeline.poseAt(1.05, false).keyframe).toBe(11);
    timeline.interrupt();
    expect(timeline.poseAt(1.1, false)).toMatchObject({ pose: REST, keyframe: -1 });
    timeline.frames('conv-1', frames, true);
    expect(timeline.stats.dropped).toBe(50);
    expect(timeline.poseAt(1.2, false).pose).toEqual(REST);
    // The next reply gets its own conversation.
    timeline.audioStart('2');
    timeline.frames('conv-3', frames, true);
    timeline.clock({ replyId: '2', playedMs: 0, at: 5, playing: true });
    expect(timeline.poseAt(5.21, false)).toMatchObject({ keyframe: 5, conversation: 'conv-3' });
  });
});
