/**
 * VAD turn-detection settings. Every duration is rounded UP to whole 32 ms Silero windows, so the
 * effective value is `ceil(ms / 32) × 32` (docs/configuration.md lists what each default means).
 */
import { ConfigError } from '../errors.js';
import { VAD_FRAME_MS } from './model.js';

export interface VadConfig {
  /** A window with probability ≥ threshold can start speech. Default 0.5. */
  readonly threshold: number;
  /** Once speaking, windows ≥ negativeThreshold still count as speech; below it they count as silence. Default 0.35. */
  readonly negativeThreshold: number;
  /** Speech must last this long (every window ≥ negativeThreshold) before `vad.speechStart`. Default 64 ms = 2 windows. */
  readonly minSpeechMs: number;
  /** Silence that ends a turn (`vad.speechEnd`). Default 480 ms = 15 windows. */
  readonly minSilenceMs: number;
  /**
   * Silence inside speech that is reported as a pause (`vad.speechPause`, then `vad.speechResume`
   * if speech comes back before minSilenceMs). Must be shorter than minSilenceMs after rounding to
   * windows. Default 192 ms = 6 windows; when it is not set and minSilenceMs is 192 ms or less, it
   * becomes one window less than minSilenceMs (at least 1 window).
   */
  readonly pauseMs: number;
  /** Audio before the onset included in the utterance handed to STT. Default 320 ms = 10 windows. */
  readonly prefixPaddingMs: number;
  /** A turn longer than this is ended (and a new one starts if speech goes on). Default 30 000 ms. */
  readonly maxSpeechMs: number;
}

export const DEFAULT_VAD_CONFIG: VadConfig = Object.freeze({
  threshold: 0.5,
  negativeThreshold: 0.35,
  minSpeechMs: 64,
  minSilenceMs: 480,
  pauseMs: 192,
  prefixPaddingMs: 320,
  maxSpeechMs: 30_000,
});

/** Number of 32 ms windows a duration means (rounded up, at least `min`). */
export function msToWindows(ms: number, min = 0): number {
  return Math.max(min, Math.ceil(ms / VAD_FRAME_MS - 1e-9));
}

/** Merges `partial` over the defaults and validates the result. Throws ConfigError naming the field. */
export function resolveVadConfig(partial: Partial<VadConfig> = {}): VadConfig {
  const given = stripUndefined(partial);
  let config: VadConfig = { ...DEFAULT_VAD_CONFIG, ...given };
  const probability = (field: keyof VadConfig): void => {
    const value = config[field];
    if (!(Number.isFinite(value) && value > 0 && value < 1)) {
      throw new ConfigError(`vad.${field}`, `must be a number in (0, 1), got ${String(value)}`);
    }
  };
  const duration = (field: keyof VadConfig, minimum: number): void => {
    const value = config[field];
    if (!(Number.isFinite(value) && value >= minimum)) {
      throw new ConfigError(`vad.${field}`, `must be a number of ms ≥ ${minimum}, got ${String(value)}`);
    }
  };
  probability('threshold');
  probability('negativeThreshold');
  if (config.negativeThreshold > config.threshold) {
    throw new ConfigError('vad.negativeThreshold', `must not exceed threshold (${config.threshold})`);
  }
  duration('minSpeechMs', 0);
  duration('minSilenceMs', VAD_FRAME_MS);
  duration('prefixPaddingMs', 0);
  duration('maxSpeechMs', 1000);
  const silenceWindows = msToWindows(config.minSilenceMs, 1);
  if (given.pauseMs === undefined && msToWindows(config.pauseMs) >= silenceWindows) {
    // The default does not fit under a short minSilenceMs: one window less (a 1-window minSilenceMs
    // leaves no room, so the pause then comes together with the end, just before it).
    config = { ...config, pauseMs: Math.max(1, silenceWindows - 1) * VAD_FRAME_MS };
  } else {
    duration('pauseMs', VAD_FRAME_MS);
    if (msToWindows(config.pauseMs) >= silenceWindows) {
      throw new ConfigError(
        'vad.pauseMs',
        `must be shorter than minSilenceMs (${config.minSilenceMs} ms = ${silenceWindows} windows of ${VAD_FRAME_MS} ms), got ${config.pauseMs}`,
      );
    }
  }
  return config;
}

function stripUndefined(partial: Partial<VadConfig>): Partial<VadConfig> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(partial)) if (value !== undefined) out[key] = value;
  return out as Partial<VadConfig>;
}
