import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { createPlayoutLogic, type AudioSink } from '../../src/session/playout.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

const RATE = 16_000;
const FRAME = 320; // 20 ms

function sink(clock: VirtualClock): AudioSink & { at: number[] } {
  const at: number[] = [];
  return { sampleRate: RATE, at, send: () => void at.push(clock.now()) };
}

const chunk = (ms: number): Int16Array => new Int16Array((RATE * ms) / 1000).fill(1000);

describe('playout actor', () => {
  it('a TTS chunk that comes 60 ms late does not make the reply late: 1 s of audio leaves in 1 s', async () => {
    const clock = new VirtualClock();
    const out = sink(clock);
    const actor = createActor(createPlayoutLogic({ sink: out, clock }), { input: { replyId: 1, paused: false } }).start();
    actor.send({ type: 'playout.enqueue', segment: 0, pcm: chunk(100), sampleRate: RATE });
    await clock.advance(160); // the next chunk was needed at 100 ms
    expect(out.at).toEqual([0, 20, 40, 60, 80]);
    actor.send({ type: 'playout.enqueue', segment: 0, pcm: chunk(900), sampleRate: RATE });
    actor.send({ type: 'playout.segmentEnd', segment: 0, text: 'hello there' });
    actor.send({ type: 'playout.finish' });
    await clock.advance(2_000);
    expect(out.at).toHaveLength(50);
    expect(out.at.slice(5, 10)).toEqual([160, 160, 160, 160, 180]); // what was due meanwhile goes out at once
    expect(out.at.at(-1)! + 20 - out.at[0]!).toBe(1_000);
    actor.stop();
  });

  it('paused by the reply (a barge-in) while waiting for audio, it resumes from where it was, not with a burst', async () => {
    const clock = new VirtualClock();
    const out = sink(clock);
    const actor = createActor(createPlayoutLogic({ sink: out, clock }), { input: { replyId: 1, paused: false } }).start();
    actor.send({ type: 'playout.enqueue', segment: 0, pcm: chunk(100), sampleRate: RATE });
    await clock.advance(150);
    actor.send({ type: 'playout.pause' });
    actor.send({ type: 'playout.enqueue', segment: 0, pcm: chunk(100), sampleRate: RATE });
    await clock.advance(300);
    expect(out.at).toHaveLength(5);
    actor.send({ type: 'playout.resume' });
    await clock.advance(200);
    expect(out.at.slice(5)).toEqual([450, 470, 490, 510, 530]);
    actor.stop();
  });

  it('frames are 20 ms of PCM16 at the sink rate', async () => {
    const clock = new VirtualClock();
    const frames: Int16Array[] = [];
    const actor = createActor(createPlayoutLogic({ sink: { sampleRate: RATE, send: (f) => void frames.push(f) }, clock }), { input: { replyId: 1, paused: false } }).start();
    actor.send({ type: 'playout.enqueue', segment: 0, pcm: chunk(40), sampleRate: RATE });
    await clock.advance(100);
    expect(frames.map((f) => f.length)).toEqual([FRAME, FRAME]);
    actor.stop();
  });
});
