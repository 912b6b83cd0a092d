/**
 * The end-of-turn contract: a detector scores how likely it is that the user has finished, and the
 * session turns that probability into how long it waits after the user's voice stopped before it
 * ends the turn (docs/turn-detection.md). The VAD's `vad.speechEnd` is not this decision: it still
 * means `minSilenceMs` of silence.
 */
import type { ChatMessage, PcmFloat } from '../providers/types.js';

export interface TurnDetectorInput {
  /** The turn's text so far: final segments joined with the interim tail; '' if the recognizer gave none yet. */
  readonly text: string;
  /** The user's audio of the turn so far (16 kHz mono, from the onset with prefix padding). */
  readonly audio: PcmFloat;
  /**
   * The conversation before this turn, oldest first. The agent's last question helps: after
   * "For how many?", "four" is a complete turn.
   */
  readonly history: readonly ChatMessage[];
  /** Aborted once the answer is no longer wanted (the user spoke again, the session closed). */
  readonly signal: AbortSignal;
}

export interface TurnDetector {
  /** For logs and metrics: `'lexical'`, `'scripted'`, the model's name. */
  readonly name: string;
  /**
   * Probability in [0, 1] that the user has finished their turn. Values outside are clamped and NaN
   * counts as 0 (see {@link endpointingDelayMs}). May answer synchronously.
   */
  endOfTurnProbability(input: TurnDetectorInput): number | Promise<number>;
}

export interface EndpointingSettings {
  /** Wait after the audio edge when the detector is sure the turn is complete (p = 1). Default 200 ms. */
  readonly minEndpointingMs: number;
  /** Wait after the audio edge when the detector is sure the turn goes on (p = 0). Default 1500 ms. */
  readonly maxEndpointingMs: number;
}

export const DEFAULT_ENDPOINTING_SETTINGS: EndpointingSettings = Object.freeze({
  minEndpointingMs: 200,
  maxEndpointingMs: 1500,
});

/**
 * A detector's answer made safe to compute with: clamped to [0, 1]; NaN counts as 0. A detector
 * that answers NaN is broken, and 0 is the answer that cannot cut the user off: the turn still
 * ends, `maxEndpointingMs` after the audio edge.
 */
export function clampProbability(probability: number): number {
  if (Number.isNaN(probability)) return 0;
  return Math.min(1, Math.max(0, probability));
}

/**
 * How long after the audio edge (the end of the last voiced VAD window) the turn ends, in whole ms:
 * linear from `maxEndpointingMs` at p = 0 to `minEndpointingMs` at p = 1, with p clamped as by
 * {@link clampProbability}. With the defaults: p = 1 → 200, 0.85 → 395, 0.5 → 850, 0 → 1500.
 * The settings are expected to be validated already (`minEndpointingMs <= maxEndpointingMs`).
 */
export function endpointingDelayMs(probability: number, settings: EndpointingSettings): number {
  const p = clampProbability(probability);
  const { minEndpointingMs: min, maxEndpointingMs: max } = settings;
  return Math.round(max - (max - min) * p);
}
