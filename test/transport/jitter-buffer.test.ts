/**
 * The inbound jitter buffer in virtual time: in-order streams pass straight through, reordering
 * within the depth is undone, a hole that outlives the depth is concealed frame by frame, late
 * packets are dropped and deepen the buffer, and a long gap is a discontinuity, not seconds of
 * concealment.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JitterBuffer, type JitterOutput, type JitterTimers } from '../../src/transport/jitter-buffer.js';

class VirtualTime implements JitterTimers {
  now = 0;
  #timers = new Map<number, { at: number; run: () => void }>();
  #id = 0;
  setTimeout(run: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now + ms, run });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].run();
    }
    this.now = end;
  }
}

function setup(options: { maxConcealedFrames?: number } = {}) {
  const time = new VirtualTime();
  const out: string[] = [];
  const buffer = new JitterBuffer((o: JitterOutput) => out.push(o.kind === 'lost' ? 'lost' : String(o.payload[0])), { now: () => time.now, timers: time, ...options });
  /** Packet `seq` arrives now; its payload names it (mod 256). */
  const arrive = (seq: number) => buffer.push(seq, Uint8Array.of(seq & 0xff));
  return { time, out, buffer, arrive };
}

describe('JitterBuffer', () => {
  it('an in-order stream goes straight through: nothing waits, nothing is held', () => {
    const { out, buffer, arrive, time } = setup();
    for (let seq = 100; seq < 110; seq++) {
      arrive(seq);
      expect(out.at(-1)).toBe(String(seq));
      time.advance(20);
    }
    expect(buffer.stats).toEqual({ late: 0, lost: 0, concealed: 0, reordered: 0, depthMs: 20 });
  });

  it('reordering within the depth is undone; the depth grows to the lateness seen', () => {
    const { out, buffer, arrive, time } = setup();
    arrive(1);
    arrive(3); // 2 is late
    expect(out).toEqual(['1']);
    time.advance(15);
    arrive(2);
    expect(out).toEqual(['1', '2', '3']);
    expect(buffer.stats).toMatchObject({ reordered: 1, lost: 0, depthMs: 20 });
  });

  it('a hole that outlives the depth is concealed, and the packets behind it play at once; the straggler is late', () => {
    const { out, buffer, arrive, time } = setup();
    arrive(10);
    arrive(12);
    arrive(13);
    expect(out).toEqual(['10']);
    time.advance(20); // the depth (20 ms) passes with 11 still missing
    expect(out).toEqual(['10', 'lost', '12', '13']);
    arrive(11);
    expect(out).toHaveLength(4);
    expect(buffer.stats).toMatchObject({ lost: 1, concealed: 1, late: 1 });
    // A late packet deepens the buffer: the next hole waits longer.
    expect(buffer.stats.depthMs).toBe(40);
    arrive(15);
    time.advance(30);
    expect(out).toHaveLength(4);
    time.advance(10);
    expect(out.slice(4)).toEqual(['lost', '15']);
  });

  it('the depth never exceeds 80 ms, and relaxes one frame after two quiet seconds', () => {
    const { buffer, arrive, time } = setup();
    arrive(1);
    for (let i = 0; i < 10; i++) arrive(1); // duplicates: late each time
    expect(buffer.stats.depthMs).toBe(80);
    let seq = 2;
    for (let t = 0; t < 2_100; t += 20, seq++) {
      arrive(seq);
      time.advance(20);
    }
    expect(buffer.stats.depthMs).toBe(60);
  });

  it('a gap of many packets is a discontinuity: at most maxConcealedFrames are concealed', () => {
    const { out, buffer, arrive, time } = setup({ maxConcealedFrames: 3 });
    arrive(1);
    arrive(250);
    time.advance(20);
    expect(out).toEqual(['1', 'lost', 'lost', 'lost', '250']);
    expect(buffer.stats).toMatchObject({ lost: 248, concealed: 3 });
  });

  it('sequence numbers wrap at 65535', () => {
    const { out, arrive, time } = setup();
    arrive(65534);
    arrive(0);
    arrive(65535);
    time.advance(100);
    expect(out).toEqual(['254', '255', '0']);
  });

  it('any arrival order within the depth plays every packet once, in order; every packet is played, concealed or late', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 65535 }),
        fc.array(fc.record({ delay: fc.integer({ min: 0, max: 120 }), drop: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        (first, packets) => {
          const time = new VirtualTime();
          const outputs: JitterOutput[] = [];
          const b = new JitterBuffer((o) => outputs.push(o), { now: () => time.now, timers: time, maxConcealedFrames: 100 });
          // Packet i is sent at 20·i ms and arrives `delay` ms later (or never).
          const arrivals = packets
            .map((p, i) => ({ seq: (first + i) & 0xffff, at: i * 20 + p.delay, drop: p.drop && i > 0 }))
            .filter((p) => !p.drop)
            .sort((a, b) => a.at - b.at);
          for (const a of arrivals) {
            time.advance(a.at - time.now);
            b.push(a.seq, Uint8Array.of(a.seq & 0xff, a.seq >> 8));
          }
          time.advance(1_000);
          b.flush();
          const played = outputs.flatMap((o) => (o.kind === 'packet' ? [(o.payload[0] as number) | ((o.payload[1] as number) << 8)] : []));
          // In order (mod 2^16), each once.
          for (let i = 1; i < played.length; i++) expect(((played[i] as number) - (played[i - 1] as number)) & 0xffff).toBeGreaterThan(0);
          expect(new Set(played).size).toBe(played.length);
          const stats = b.stats;
          expect(played.length + stats.late).toBe(arrivals.length);
          // The slots handed out (played and concealed) are exactly the sequence range from the first
          // played packet to the last: a hole is only ever concealed in front of a packet that plays.
          const span = (((played.at(-1) as number) - (played[0] as number)) & 0xffff) + 1;
          expect(played.length + outputs.filter((o) => o.kind === 'lost').length).toBe(span);
        },
      ),
      { numRuns: 300 },
    );
  });
});
