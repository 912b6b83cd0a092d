import type { Clock } from '../clock.js';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * Lets every pending microtask (promise continuations, async generators) run, and the immediates
 * they schedule (two event-loop turns).
 */
export async function drainMicrotasks(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A deterministic clock for simulations: time moves only when `advance` is called, timers fire in
 * (time, creation) order, and promise chains settle between timers, so async providers, playout
 * pacing and XState delays interleave exactly as they would in real time, only instantly.
 */
export class VirtualClock implements Clock {
  #now = 0;
  #seq = 0;
  #nextId = 1;
  #timers = new Map<number, Timer>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#timers.set(id, { id, at: this.#now + delay, seq: this.#seq++, fn });
    return id;
  }

  clearTimeout(id: unknown): void {
    if (typeof id === 'number') this.#timers.delete(id);
  }

  /** Number of timers that have not fired or been cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  #earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (best === undefined || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq)) best = timer;
    }
    return best;
  }

  /** Runs every timer due within `ms`, settling promises after each, and ends at now + ms. */
  async advance(ms: number): Promise<void> {
    const until = this.#now + Math.max(0, ms);
    await drainMicrotasks();
    for (;;) {
      const next = this.#earliest();
      if (next === undefined || next.at > until) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await drainMicrotasks();
    }
    this.#now = until;
    await drainMicrotasks();
  }
}
