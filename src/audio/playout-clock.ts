/**
 * A drift-free playout clock: it emits one tick per `frameMs` (20 ms) of audio, each scheduled against
 * an anchor time — frame k is due at `anchor + k × frameMs` — instead of chaining `setTimeout(frameMs)`,
 * whose lateness would add up (the seed project took 9.2 s to play 8.8 s that way). A late timer makes
 * the frames it missed go out at once on the next wake-up, so the long-run rate is exact.
 *
 * The clock only paces; the consumer's `onFrame` sends the actual audio. `pause()` / `resume()` keep
 * the played position; on resume the next frame is due immediately and the schedule re-anchors there.
 * A clock that starved (nothing to play) keeps its schedule through a gap shorter than the catch-up
 * budget: audio that was late goes out as soon as it is there, so the stream loses no time.
 * Time comes from an injectable {@link Clock}, so tests run it in virtual time.
 */
import { type Clock, realClock } from '../clock.js';
import type { Logger } from '../observability/logger.js';

export type { Clock } from '../clock.js';

export interface PlayoutFrame {
  /** 0-based index of this frame since start (pauses do not skip indices). */
  readonly index: number;
  /** When the schedule wanted this frame, in clock time. */
  readonly dueMs: number;
  /** Played position after this frame, in ms of audio. */
  readonly positionMs: number;
}

export interface PlayoutClockOptions {
  /** Called once per frame. Return `false` when there was nothing to play: the clock then pauses
   * itself ("starved") without advancing the position; call `resume()` when audio arrives. */
  readonly onFrame: (frame: PlayoutFrame) => boolean | void;
  /** Frame duration in ms. Default 20. */
  readonly frameMs?: number;
  readonly clock?: Clock;
  /**
   * How many overdue frames may go out back to back after a stall (event-loop block) or after a
   * starvation (audio that came late), so the stream keeps its real-time rate overall; the client's
   * jitter buffer absorbs the burst. Beyond this the schedule re-anchors instead (a late stream, not a
   * fast one). Default 25 (500 ms).
   */
  readonly maxCatchUpFrames?: number;
  readonly logger?: Logger;
}

export type PlayoutState = 'idle' | 'running' | 'paused' | 'closed';

export class PlayoutClock {
  readonly frameMs: number;
  readonly #clock: Clock;
  readonly #onFrame: PlayoutClockOptions['onFrame'];
  readonly #maxCatchUp: number;
  readonly #logger: Logger | undefined;
  #state: PlayoutState = 'idle';
  #played = 0;
  #anchorMs = 0;
  #anchorIndex = 0;
  #timer: unknown = undefined;
  #starved = false;

  constructor(options: PlayoutClockOptions) {
    this.frameMs = options.frameMs ?? 20;
    if (!(this.frameMs > 0)) throw new RangeError(`frameMs must be > 0, got ${this.frameMs}`);
    this.#clock = options.clock ?? realClock;
    this.#onFrame = options.onFrame;
    this.#maxCatchUp = Math.max(1, options.maxCatchUpFrames ?? 25);
    this.#logger = options.logger;
  }

  get state(): PlayoutState {
    return this.#state;
  }

  /** True when the clock paused itself because `onFrame` had nothing to play. */
  get starved(): boolean {
    return this.#starved;
  }

  /** Played audio in ms: frames emitted (and not refused) × frameMs. */
  get positionMs(): number {
    return this.#played * this.frameMs;
  }

  get framesPlayed(): number {
    return this.#played;
  }

  /** Starts at position 0; the first frame is due now. */
  start(): void {
    if (this.#state === 'closed') throw new Error('PlayoutClock is closed');
    this.#cancelTimer();
    this.#played = 0;
    this.#run();
  }

  /** Pauses on purpose (a starved clock becomes a paused one: its `resume()` re-anchors). */
  pause(): void {
    if (this.#state === 'paused') this.#starved = false;
    if (this.#state !== 'running') return;
    this.#cancelTimer();
    this.#state = 'paused';
  }

  /**
   * Continues from the paused position. After `pause()` the next frame is due immediately and the
   * schedule re-anchors there. After starving, the schedule holds if the audio came back within the
   * catch-up budget (`maxCatchUpFrames`): the frames that were due meanwhile go out at once, as after a
   * stall, so a short input gap (the provider's next chunk held up by a busy event loop, say) costs
   * the stream no time and the client's jitter buffer gets its margin back; after a longer gap the
   * stream is late, and re-anchors.
   */
  resume(): void {
    if (this.#state !== 'paused') return;
    if (this.#starved && this.#clock.now() - this.#due(this.#played) < this.#maxCatchUp * this.frameMs) {
      this.#state = 'running';
      this.#starved = false;
      this.#tick();
      return;
    }
    this.#run();
  }

  /** Stops for good. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#cancelTimer();
    this.#state = 'closed';
  }

  #run(): void {
    this.#state = 'running';
    this.#starved = false;
    this.#anchorMs = this.#clock.now();
    this.#anchorIndex = this.#played;
    this.#tick();
  }

  #due(index: number): number {
    return this.#anchorMs + (index - this.#anchorIndex) * this.frameMs;
  }

  readonly #tick = (): void => {
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    let now = this.#clock.now();
    if (now - this.#due(this.#played) >= this.#maxCatchUp * this.frameMs) {
      // A stall longer than the catch-up budget: play on from here rather than burst.
      this.#logger?.warn({ lateMs: now - this.#due(this.#played) }, 'playout stalled; re-anchoring');
      this.#anchorMs = now - (this.#maxCatchUp - 1) * this.frameMs;
      this.#anchorIndex = this.#played;
    }
    while (this.#state === 'running' && this.#due(this.#played) <= now) {
      const index = this.#played;
      let played: boolean | void = true;
      try {
        played = this.#onFrame({ index, dueMs: this.#due(index), positionMs: (index + 1) * this.frameMs });
      } catch (error) {
        this.#logger?.error({ err: error }, 'playout onFrame threw');
      }
      if (this.#state !== 'running' || this.#played !== index) return; // paused, closed or restarted inside onFrame
      if (played === false) {
        this.#state = 'paused';
        this.#starved = true;
        return;
      }
      this.#played = index + 1;
      now = this.#clock.now();
    }
    if (this.#state === 'running') {
      this.#timer = this.#clock.setTimeout(this.#tick, Math.max(0, this.#due(this.#played) - now));
    }
  };

  #cancelTimer(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
