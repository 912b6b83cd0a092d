/**
 * How fast a client's audio arrives, against how fast a microphone can produce it. A real
 * microphone produces one second of audio per second; a client that sends much more than that is
 * replaying a file or flooding the VAD (every window costs an inference). Pure: time comes in with
 * each frame, so the rule is tested without timers and shared by any transport that wants it.
 *
 * The rule is a token bucket counted in milliseconds of audio: it fills at `maxRate` ms of audio
 * per ms of wall time and holds at most `burstMs`. So over any stretch of wall time T the meter
 * accepts at most `burstMs + maxRate × T` of audio: a client that fell behind (a stalled socket, a
 * reconnect) may catch up by `burstMs` at once, while a sustained excess is cut at `maxRate`.
 * Frames that do not fit are dropped. The first drop starts an *excess episode*; one second of wall
 * time without a drop ends it. An episode that goes on for `refuseAfterMs` means the client keeps
 * sending faster than real time on purpose: it is refused.
 */
import { ConfigError } from '../errors.js';

export interface InboundRateOptions {
  /** Audio may arrive at most this many times faster than real time, sustained. Default 1.5. */
  readonly maxRate?: number;
  /** Audio (ms) accepted at once beyond the rate: what a client that fell behind may catch up. Default 2000. */
  readonly burstMs?: number;
  /** Wall time (ms) a client may stay over the rate, dropping frames, before it is refused. Default 3000. */
  readonly refuseAfterMs?: number;
}

export const DEFAULT_INBOUND_RATE: Required<InboundRateOptions> = { maxRate: 1.5, burstMs: 2000, refuseAfterMs: 3000 };

/** Wall time without a dropped frame that ends an excess episode. */
export const EXCESS_QUIET_MS = 1000;

/**
 * What the meter decided about one frame: `accept`; `throttle`, dropped, and the first drop of an
 * episode (tell the client once); `drop`, dropped again in the same episode; `refuse`, the episode
 * lasted too long (and every frame after it is refused too).
 */
export type InboundVerdict = 'accept' | 'throttle' | 'drop' | 'refuse';

export interface InboundRateStats {
  /** Frames dropped for arriving over the rate. */
  readonly droppedFrames: number;
  /** Their audio, in ms. */
  readonly droppedMs: number;
}

function check(field: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) throw new ConfigError(field, `must be a number >= ${min}, got ${String(value)}`);
  return value;
}

/** Resolves and checks the options (`ConfigError` naming the field under `prefix`). */
export function resolveInboundRate(options: InboundRateOptions = {}, prefix = 'inboundRate'): Required<InboundRateOptions> {
  return {
    maxRate: check(`${prefix}.maxRate`, options.maxRate ?? DEFAULT_INBOUND_RATE.maxRate, 1),
    burstMs: check(`${prefix}.burstMs`, options.burstMs ?? DEFAULT_INBOUND_RATE.burstMs, 0),
    refuseAfterMs: check(`${prefix}.refuseAfterMs`, options.refuseAfterMs ?? DEFAULT_INBOUND_RATE.refuseAfterMs, 0),
  };
}

export class InboundRateMeter {
  readonly #options: Required<InboundRateOptions>;
  /** Audio (ms) that may still arrive at once. Full at the start: the first frames are never held to the rate. */
  #tokens: number;
  #lastAt: number | undefined;
  #episodeStart: number | undefined;
  #lastDropAt = Number.NEGATIVE_INFINITY;
  #refused = false;
  #droppedFrames = 0;
  #droppedMs = 0;

  constructor(options: InboundRateOptions = {}) {
    this.#options = resolveInboundRate(options);
    this.#tokens = this.#options.burstMs;
  }

  get stats(): InboundRateStats {
    return { droppedFrames: this.#droppedFrames, droppedMs: this.#droppedMs };
  }

  /** Decides about a frame of `audioMs` of audio arriving at `nowMs` (a monotonic clock). */
  admit(audioMs: number, nowMs: number): InboundVerdict {
    if (this.#refused) return 'refuse';
    const { maxRate, burstMs, refuseAfterMs } = this.#options;
    // A frame larger than the whole bucket could never fit; it is measured against a full bucket instead.
    const capacity = Math.max(burstMs, audioMs);
    const elapsed = this.#lastAt === undefined ? 0 : Math.max(0, nowMs - this.#lastAt);
    this.#lastAt = nowMs;
    this.#tokens = Math.min(capacity, this.#tokens + elapsed * maxRate);
    if (this.#episodeStart !== undefined && nowMs - this.#lastDropAt >= EXCESS_QUIET_MS) this.#episodeStart = undefined;
    if (audioMs <= this.#tokens) {
      this.#tokens -= audioMs;
      return 'accept';
    }
    this.#droppedFrames++;
    this.#droppedMs += audioMs;
    this.#lastDropAt = nowMs;
    if (this.#episodeStart === undefined) {
      this.#episodeStart = nowMs;
      return 'throttle';
    }
    if (nowMs - this.#episodeStart >= refuseAfterMs) {
      this.#refused = true;
      return 'refuse';
    }
    return 'drop';
  }
}
