/**
 * The inbound jitter buffer of a WebRTC transport: RTP packets in arrival order in, Opus payloads
 * in sequence order out, with a slot marked `lost` (to be concealed) for each packet that did not
 * come in time. Event-driven rather than clocked: a packet that follows the one expected goes out
 * at once, so a clean stream adds no delay at all; only a hole holds the packets behind it, for at
 * most the current depth, and a hole that outlives it is declared lost.
 *
 * The depth adapts between `minDepthMs` and `maxDepthMs` (20–80 ms): a packet that fills a hole
 * late, or that comes after its slot was already concealed, raises it to cover that lateness; two
 * seconds without either lowers it one frame. Pure apart from the timer it is given, so tests run
 * it in virtual time.
 */

/** The timer methods the buffer needs (Node's, or a test's virtual clock). */
export interface JitterTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface JitterBufferOptions {
  /** Depth bounds in ms. Default 20 and 80. */
  readonly minDepthMs?: number;
  readonly maxDepthMs?: number;
  /** The duration of one packet. Default 20 ms (what browsers send for Opus). */
  readonly frameMs?: number;
  /**
   * A hole of more packets than this is a discontinuity (the sender restarted, or a long outage),
   * not loss to conceal: at most this many frames are concealed and the stream goes on from the
   * next packet. Default 5 (100 ms).
   */
  readonly maxConcealedFrames?: number;
  readonly now?: () => number;
  readonly timers?: JitterTimers;
}

/** What comes out, in sequence order: a payload to decode, or a slot to conceal. */
export type JitterOutput = { readonly kind: 'packet'; readonly payload: Uint8Array } | { readonly kind: 'lost' };

export interface JitterStats {
  /** Packets that came after their slot had been played or concealed, or twice: dropped. */
  readonly late: number;
  /** Packets declared lost (each hole that outlived the depth, in packets). */
  readonly lost: number;
  /** Lost slots handed out for concealment (fewer than `lost` across a discontinuity). */
  readonly concealed: number;
  /** Packets that came out of order but in time, and were played in order. */
  readonly reordered: number;
  /** The current depth in ms. */
  readonly depthMs: number;
}

const RELAX_AFTER_MS = 2_000;

/** `a` comes after `b` in 16-bit sequence space (RFC 3550 wrap-around). */
function after(a: number, b: number): boolean {
  const d = (a - b) & 0xffff;
  return d !== 0 && d < 0x8000;
}

export class JitterBuffer {
  readonly #minDepthMs: number;
  readonly #maxDepthMs: number;
  readonly #frameMs: number;
  readonly #maxConcealed: number;
  readonly #now: () => number;
  readonly #timers: JitterTimers;
  readonly #emit: (output: JitterOutput) => void;
  /** Waiting behind a hole, by sequence number, with their arrival time. */
  readonly #held = new Map<number, { readonly payload: Uint8Array; readonly arrivalMs: number }>();
  #next: number | undefined;
  #holeSinceMs: number | undefined;
  #depthMs: number;
  #lastAdjustMs: number;
  #timer: unknown;
  #closed = false;
  #stats = { late: 0, lost: 0, concealed: 0, reordered: 0 };

  constructor(emit: (output: JitterOutput) => void, options: JitterBufferOptions = {}) {
    this.#frameMs = options.frameMs ?? 20;
    this.#minDepthMs = options.minDepthMs ?? 20;
    this.#maxDepthMs = Math.max(this.#minDepthMs, options.maxDepthMs ?? 80);
    this.#maxConcealed = options.maxConcealedFrames ?? 5;
    this.#now = options.now ?? (() => performance.now());
    this.#timers = options.timers ?? { setTimeout: (callback, ms) => setTimeout(callback, ms), clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout) };
    this.#emit = emit;
    this.#depthMs = this.#minDepthMs;
    this.#lastAdjustMs = this.#now();
  }

  get stats(): JitterStats {
    return { ...this.#stats, depthMs: this.#depthMs };
  }

  push(sequence: number, payload: Uint8Array): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#relax(now);
    const seq = sequence & 0xffff;
    if (this.#next === undefined) this.#next = seq;
    if (after(this.#next, seq) || this.#held.has(seq)) {
      // Its slot went by (played, or concealed because it was too late), or a duplicate.
      this.#stats.late++;
      this.#deepen(this.#depthMs + this.#frameMs, now);
      return;
    }
    if (seq !== this.#next) {
      this.#held.set(seq, { payload, arrivalMs: now });
      this.#holeSinceMs ??= now;
    } else {
      if (this.#holeSinceMs !== undefined) {
        // It fills the hole the packets behind it waited on.
        this.#stats.reordered++;
        this.#deepen(now - this.#holeSinceMs, now);
      }
      this.#emit({ kind: 'packet', payload });
      this.#next = (seq + 1) & 0xffff;
      this.#holeSinceMs = undefined;
    }
    this.#drain(now);
  }

  /** Plays out what is held (the stream ended, or the transport closes) and stops the timer. */
  flush(): void {
    this.#clearTimer();
    while (this.#held.size > 0) this.#skipHole();
    this.#holeSinceMs = undefined;
  }

  close(): void {
    this.#closed = true;
    this.#clearTimer();
    this.#held.clear();
  }

  /** Sends out whatever follows in order; declares the hole lost once it outlived the depth. */
  #drain(now: number): void {
    for (;;) {
      this.#playInOrder();
      if (this.#held.size === 0) {
        this.#holeSinceMs = undefined;
        this.#clearTimer();
        return;
      }
      this.#holeSinceMs ??= now;
      const waited = now - this.#holeSinceMs;
      if (waited < this.#depthMs) {
        this.#arm(this.#depthMs - waited);
        return;
      }
      this.#skipHole();
      // The packets now at the head waited too; the next hole is timed from now.
      this.#holeSinceMs = this.#held.size > 0 ? now : undefined;
    }
  }

  #playInOrder(): void {
    for (let entry = this.#held.get(this.#next ?? -1); entry !== undefined; entry = this.#held.get(this.#next ?? -1)) {
      this.#held.delete(this.#next as number);
      this.#emit({ kind: 'packet', payload: entry.payload });
      this.#next = ((this.#next as number) + 1) & 0xffff;
    }
  }

  /** The hole before the oldest held packet is lost: conceal it (up to the cap) and go on from there. */
  #skipHole(): void {
    const next = this.#next as number;
    let oldest: number | undefined;
    for (const seq of this.#held.keys()) if (oldest === undefined || after(oldest, seq)) oldest = seq;
    if (oldest === undefined) return;
    const missing = (oldest - next) & 0xffff;
    this.#stats.lost += missing;
    const conceal = Math.min(missing, this.#maxConcealed);
    this.#stats.concealed += conceal;
    for (let i = 0; i < conceal; i++) this.#emit({ kind: 'lost' });
    this.#next = oldest;
    this.#playInOrder();
  }

  #deepen(lateMs: number, now: number): void {
    const wanted = Math.ceil(lateMs / this.#frameMs) * this.#frameMs;
    if (wanted > this.#depthMs) this.#depthMs = Math.min(this.#maxDepthMs, wanted);
    this.#lastAdjustMs = now;
  }

  #relax(now: number): void {
    if (now - this.#lastAdjustMs < RELAX_AFTER_MS || this.#depthMs <= this.#minDepthMs) return;
    this.#depthMs = Math.max(this.#minDepthMs, this.#depthMs - this.#frameMs);
    this.#lastAdjustMs = now;
  }

  #arm(ms: number): void {
    this.#clearTimer();
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) this.#drain(this.#now());
    }, Math.max(1, ms));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
