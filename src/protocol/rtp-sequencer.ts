/**
 * RTP sequence numbers, timestamps and the talkspurt marker for one outbound audio stream
 * (RFC 3550 §5.1, RFC 3551 §4.1). Pure: the caller passes the current time. Shared by the server's
 * WebRTC transport and the client's WebRTC helper so both sides stamp packets the same way.
 */

export interface RtpStamp {
  readonly sequenceNumber: number;
  readonly timestamp: number;
  /** Set on the first packet of a talkspurt (after silence or at stream start). */
  readonly marker: boolean;
}

export interface RtpSequencerOptions {
  /** RTP clock rate in Hz; Opus always uses 48 000. */
  readonly clockRate?: number;
  /** A pause longer than this between two packets starts a new talkspurt. Default 100 ms. */
  readonly talkspurtGapMs?: number;
  /** Source of the random initial sequence number and timestamp. Default `Math.random`. */
  readonly random?: () => number;
}

export class RtpSequencer {
  readonly clockRate: number;
  readonly talkspurtGapMs: number;
  #sequenceNumber: number;
  #timestamp: number;
  #lastSamples = 0;
  #lastAtMs: number | undefined;

  constructor(options: RtpSequencerOptions = {}) {
    this.clockRate = options.clockRate ?? 48_000;
    this.talkspurtGapMs = options.talkspurtGapMs ?? 100;
    const random = options.random ?? Math.random;
    this.#sequenceNumber = Math.floor(random() * 0x10000) & 0xffff;
    this.#timestamp = Math.floor(random() * 0x1_0000_0000) >>> 0;
  }

  /** Stamps the next packet carrying `samples` samples, sent at `nowMs`. */
  next(samples: number, nowMs: number): RtpStamp {
    const lastAt = this.#lastAtMs;
    let marker = false;
    if (lastAt === undefined) {
      marker = true;
    } else {
      const gapMs = nowMs - lastAt;
      this.#sequenceNumber = (this.#sequenceNumber + 1) & 0xffff;
      let advance = this.#lastSamples;
      if (gapMs > this.talkspurtGapMs) {
        // Silence: the timestamp keeps following real time so the receiver schedules playout correctly.
        marker = true;
        advance = Math.max(advance, Math.round((gapMs * this.clockRate) / 1000));
      }
      this.#timestamp = (this.#timestamp + advance) >>> 0;
    }
    this.#lastAtMs = nowMs;
    this.#lastSamples = samples;
    return { sequenceNumber: this.#sequenceNumber, timestamp: this.#timestamp, marker };
  }

  /** Makes the next packet start a talkspurt regardless of timing (e.g. a new reply begins). */
  markTalkspurt(nowMs: number): void {
    if (this.#lastAtMs !== undefined) this.#lastAtMs = Math.min(this.#lastAtMs, nowMs - this.talkspurtGapMs - 1);
  }
}

/** True when RTP sequence number `a` comes after `b`, allowing for 16-bit wrap-around. */
export function isNewerSequence(a: number, b: number): boolean {
  const diff = (a - b) & 0xffff;
  return diff !== 0 && diff < 0x8000;
}

/** Packets missing between sequence numbers `previous` and `current` (0 when consecutive). */
export function sequenceGap(previous: number, current: number): number {
  return ((current - previous) & 0xffff) - 1;
}
