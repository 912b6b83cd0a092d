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
  prefixPaddingMs: 320,
  maxSpeechMs: 30_000,
});

/** Number of 32 ms windows a duration means (rounded up, at least `min`). */
export function msToWindows(ms: number, min = 0): number {
  return Math.max(min, Math.ceil(ms / VAD_FRAME_MS - 1e-9));
}

/** Merges `partial` over the defaults and validates the result. Throws ConfigError naming the field. */
export function resolveVadConfig(partial: Partial<VadConfig> = {}): VadConfig {
  const config: VadConfig = { ...DEFAULT_VAD_CONFIG, ...stripUndefined(partial) };
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
  return config;
}

function stripUndefined(partial: Partial<VadConfig>): Partial<VadConfig> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(partial)) if (value !== undefined) out[key] = value;
  return out as Partial<VadConfig>;
}
