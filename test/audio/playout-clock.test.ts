import { describe, expect, it } from 'vitest';
import { PlayoutClock, type Clock } from '../../src/audio/playout-clock.js';

/** Virtual time: timers fire in order when `advance` is called; each fires `lateness()` ms late. */
class VirtualClock implements Clock {
  time = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(readonly lateness: () => number = () => 0) {}
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.time + Math.max(0, ms) + this.lateness(), fn });
    return id;
  }
  clearTimeout(id: unknown): void {
    this.#timers.delete(id as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (first === undefined || entry[1].at < first[1].at)) first = entry;
      if (first === undefined) break;
      this.#timers.delete(first[0]);
      this.time = Math.max(this.time, first[1].at);
      first[1].fn();
    }
    this.time = end;
  }
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

describe('PlayoutClock', () => {
  it('emits exactly 500 frames in 10 s of virtual time, each on schedule, with no drift even when timers fire late', () => {
    const random = seeded(7);
    const clock = new VirtualClock(() => random() * 8); // every timer up to 8 ms late
    const emitted: Array<{ index: number; due: number; at: number }> = [];
    const playout = new PlayoutClock({ clock, onFrame: (f) => void emitted.push({ index: f.index, due: f.dueMs, at: clock.now() }) });
    playout.start();
    clock.advance(9_999);
    expect(emitted).toHaveLength(500);
    expect(playout.positionMs).toBe(10_000);
    emitted.forEach((f, k) => {
      expect(f.index).toBe(k);
      expect(f.due).toBe(k * 20);
      expect(f.at).toBeGreaterThanOrEqual(f.due);
      expect(f.at - f.due).toBeLessThanOrEqual(8); // lateness never accumulates
    });
  });

  it('chained setTimeout(20) would drift: the same late timers push it ~2 s behind in 10 s', () => {
    const random = seeded(7);
    const clock = new VirtualClock(() => random() * 8);
    let frames = 0;
    const tick = (): void => {
      frames++;
      clock.setTimeout(tick, 20);
    };
    tick();
    clock.advance(9_999);
    expect(frames).toBeLessThan(450); // what the drift-free clock above avoids
  });

  it('pause keeps the position; resume continues from it', () => {
    const clock = new VirtualClock();
    let frames = 0;
    const playout = new PlayoutClock({ clock, onFrame: () => void frames++ });
    playout.start();
    clock.advance(2_990); // frames due at 0..2980 → 150
    expect(playout.positionMs).toBe(3_000);
    playout.pause();
    expect(clock.pending).toBe(0);
    clock.advance(5_000);
    expect(frames).toBe(150);
    expect(playout.positionMs).toBe(3_000);
    playout.resume();
    clock.advance(990);
    expect(playout.positionMs).toBe(4_000);
    expect(frames).toBe(200);
    playout.close();
    playout.close();
    clock.advance(1_000);
    expect(frames).toBe(200);
    expect(clock.pending).toBe(0);
  });

  it('an event-loop stall is caught up by a bounded burst, then the schedule holds', () => {
    const clock = new VirtualClock();
    const at: number[] = [];
    const playout = new PlayoutClock({ clock, maxCatchUpFrames: 10, onFrame: () => void at.push(clock.now()) });
    playout.start();
    clock.time += 100; // block the loop for 100 ms: 5 frames overdue, within the catch-up budget
    clock.advance(899);
    expect(playout.framesPlayed).toBe(50);
    expect(at.slice(1, 8)).toEqual([100, 100, 100, 100, 100, 120, 140]);
  });

  it('returning false from onFrame (nothing to play) pauses without advancing; resume restarts', () => {
    const clock = new VirtualClock();
    let available = 3;
    const playout = new PlayoutClock({ clock, onFrame: () => (available > 0 ? (available--, true) : false) });
    playout.start();
    clock.advance(1_000);
    expect(playout.positionMs).toBe(60);
    expect(playout.state).toBe('paused');
    expect(playout.starved).toBe(true);
    available = 2;
    playout.resume();
    clock.advance(1_000);
    expect(playout.positionMs).toBe(100);
  });

  it('audio that comes late within the catch-up budget costs the stream no time: 1 s of audio still takes 1 s', () => {
    // The provider's second chunk is 70 ms late (its timer held up by a busy event loop, as when
    // 100 replies start at once): the clock starves at frame 5, and when the chunk comes the frames
    // that were due meanwhile go out at once; the last frame leaves on its original schedule.
    const clock = new VirtualClock();
    let available = 5;
    const at: number[] = [];
    const playout = new PlayoutClock({ clock, onFrame: () => (available > 0 ? (available--, at.push(clock.now()), true) : false) });
    playout.start();
    clock.advance(170); // frame 5 was due at 100
    expect(playout.starved).toBe(true);
    available = 45;
    playout.resume();
    clock.advance(1_000);
    expect(at).toHaveLength(50);
    expect(at.slice(4, 10)).toEqual([80, 170, 170, 170, 170, 180]); // frames 5–8 catch up, 9 is on time
    expect(at.at(-1)).toBe(980); // frame 49 on its slot: 50 frames in 1 s, as without the gap
  });

  it('a gap longer than the catch-up budget is a late stream: the schedule re-anchors at the new audio, no burst', () => {
    const clock = new VirtualClock();
    let available = 5;
    const at: number[] = [];
    const playout = new PlayoutClock({ clock, maxCatchUpFrames: 10, onFrame: () => (available > 0 ? (available--, at.push(clock.now()), true) : false) });
    playout.start();
    clock.advance(400); // 300 ms past frame 5's slot: beyond 10 frames
    available = 3;
    playout.resume();
    clock.advance(100);
    expect(at.slice(5)).toEqual([400, 420, 440]);
  });

  it('pause() on a starved clock makes it a deliberate pause: resume() re-anchors instead of catching up', () => {
    const clock = new VirtualClock();
    let available = 5;
    const at: number[] = [];
    const playout = new PlayoutClock({ clock, onFrame: () => (available > 0 ? (available--, at.push(clock.now()), true) : false) });
    playout.start();
    clock.advance(150);
    expect(playout.starved).toBe(true);
    playout.pause(); // e.g. the user started talking while the reply waited for audio
    expect(playout.starved).toBe(false);
    available = 3;
    clock.advance(50);
    playout.resume();
    clock.advance(100);
    expect(at.slice(5)).toEqual([200, 220, 240]);
  });

  it('a throwing onFrame does not stop the clock', () => {
    const clock = new VirtualClock();
    const playout = new PlayoutClock({
      clock,
      onFrame: () => {
        throw new Error('listener bug');
      },
    });
    playout.start();
    clock.advance(199);
    expect(playout.framesPlayed).toBe(10);
  });
});
