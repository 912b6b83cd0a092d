/**
 * Audio-driven FLAME keyframes for the local Motion Server: one keyframe per 40 ms of audio
 * (25 fps of audio time). Deliberately simple and deterministic, so tests can reason about it:
 *
 * - jaw_pose[0] opens with the speech envelope (RMS in dB, mapped −60…−10 dBFS → 0…1, fast attack,
 *   slower release), up to 0.35 rad;
 * - four expression coefficients follow the spectral shape: zero-crossing rate separates fricatives
 *   ("s", "f": teeth) from voiced sound, and the share of energy below ~500 Hz separates rounded
 *   ("oo") from spread ("ee") vowels; `expression[0]` is the open-mouth ("aa") blend;
 * - eye_lid blinks every 2.5–5 s (a seeded pseudo-random interval) over 5 frames;
 * - rotation and neck_pose sway slowly (incommensurate sines) with a nod that grows with loudness.
 */
import { FLAME_SIZES, type FlameKeyframe } from '../protocol/types.js';

export const MOTION_FPS = 25;

const BLINK_SHAPE = [0.5, 1, 1, 0.6, 0.2] as const;

export interface AnimatorOptions {
  readonly sampleRate: number;
  /** Seeds the blink intervals; keyframes are a pure function of (seed, audio). */
  readonly seed?: number;
  /** Seconds of animation already played on this connection (keeps head motion continuous). */
  readonly startTime?: number;
}

export class MotionAnimator {
  readonly #samplesPerFrame: number;
  readonly #sampleRate: number;
  readonly #pending: Int16Array;
  #pendingLength = 0;
  #frameIndex = 0;
  readonly #startTime: number;
  #envelope = 0;
  #lowpass = 0;
  readonly #lowpassAlpha: number;
  #random: number;
  #nextBlink: number;

  constructor(options: AnimatorOptions) {
    this.#sampleRate = options.sampleRate;
    this.#samplesPerFrame = Math.round(options.sampleRate / MOTION_FPS);
    this.#pending = new Int16Array(this.#samplesPerFrame);
    this.#startTime = options.startTime ?? 0;
    this.#lowpassAlpha = 1 - Math.exp((-2 * Math.PI * 500) / options.sampleRate);
    this.#random = (options.seed ?? 1) >>> 0 || 1;
    this.#nextBlink = this.#blinkInterval();
  }

  get samplesPerFrame(): number {
    return this.#samplesPerFrame;
  }

  /** Keyframes produced so far. */
  get frames(): number {
    return this.#frameIndex;
  }

  #rand(): number {
    // xorshift32: small, seedable, good enough for blink timing.
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x >>> 0;
    return this.#random / 0x1_0000_0000;
  }

  #blinkInterval(): number {
    return Math.round((2.5 + 2.5 * this.#rand()) * MOTION_FPS);
  }

  /** Feeds PCM; returns the keyframes each completed 40 ms window yields. */
  push(pcm: Int16Array): FlameKeyframe[] {
    const out: FlameKeyframe[] = [];
    let offset = 0;
    while (offset < pcm.length) {
      const take = Math.min(this.#samplesPerFrame - this.#pendingLength, pcm.length - offset);
      this.#pending.set(pcm.subarray(offset, offset + take), this.#pendingLength);
      this.#pendingLength += take;
      offset += take;
      if (this.#pendingLength === this.#samplesPerFrame) {
        out.push(this.#keyframe(this.#pending));
        this.#pendingLength = 0;
      }
    }
    return out;
  }

  /** Ends the request: a partial window (zero-padded) becomes a last keyframe. */
  flush(): FlameKeyframe[] {
    if (this.#pendingLength === 0) return [];
    this.#pending.fill(0, this.#pendingLength);
    this.#pendingLength = 0;
    return [this.#keyframe(this.#pending)];
  }

  #keyframe(window: Int16Array): FlameKeyframe {
    let energy = 0;
    let lowEnergy = 0;
    let crossings = 0;
    let previous = 0;
    for (let i = 0; i < window.length; i += 1) {
      const x = (window[i] ?? 0) / 32768;
      energy += x * x;
      this.#lowpass += this.#lowpassAlpha * (x - this.#lowpass);
      lowEnergy += this.#lowpass * this.#lowpass;
      if ((x >= 0) !== (previous >= 0) && i > 0) crossings += 1;
      previous = x;
    }
    const rms = Math.sqrt(energy / window.length);
    const db = 20 * Math.log10(rms + 1e-9);
    const level = Math.min(1, Math.max(0, (db + 60) / 50));
    this.#envelope += (level > this.#envelope ? 0.6 : 0.5) * (level - this.#envelope);
    const env = this.#envelope;
    const crossingHz = ((crossings / window.length) * this.#sampleRate) / 2;
    const fricative = Math.min(1, Math.max(0, (crossingHz - 1500) / 3000));
    const lowShare = energy > 0 ? Math.min(1, lowEnergy / energy) : 0;

    const t = this.#startTime + this.#frameIndex / MOTION_FPS;
    this.#frameIndex += 1;

    const expression = new Float32Array(FLAME_SIZES.expression);
    expression[0] = env * (1 - fricative) * 0.8;
    expression[1] = env * fricative;
    expression[2] = env * lowShare * 0.6;
    expression[3] = env * (1 - lowShare) * 0.5;

    let lid = 0;
    this.#nextBlink -= 1;
    if (this.#nextBlink < BLINK_SHAPE.length) {
      lid = BLINK_SHAPE[BLINK_SHAPE.length - 1 - Math.max(0, this.#nextBlink)] ?? 0;
      if (this.#nextBlink <= 0) this.#nextBlink = this.#blinkInterval();
    }

    const sway = (period: number, amplitude: number): number => amplitude * Math.sin((2 * Math.PI * t) / period);
    return {
      translation: new Float32Array(FLAME_SIZES.translation),
      rotation: Float32Array.of(sway(4.1, 0.03) + 0.04 * env, sway(5.3, 0.04), sway(3.7, 0.015)),
      neckPose: Float32Array.of(sway(6.1, 0.02) + 0.02 * env, sway(7.3, 0.02), 0),
      jawPose: Float32Array.of(0.35 * env, 0, 0),
      eyePose: new Float32Array(FLAME_SIZES.eyePose),
      eyeLid: Float32Array.of(lid, lid),
      expression,
    };
  }
}
