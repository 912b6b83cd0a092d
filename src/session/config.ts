/**
 * Session configuration: documented defaults (docs/configuration.md) and validation that names the
 * offending field. The machines read these values; they hold no literals of their own.
 */
import { DEFAULT_REPLY_SETTINGS, type ReplySettings } from '../../machines/reply.js';
import { DEFAULT_SEGMENT_OPTIONS } from '../../machines/segments.js';
import { DEFAULT_SESSION_SETTINGS, type SessionSettings } from '../../machines/session.js';
import { ConfigError } from '../errors.js';
import { DEFAULT_HISTORY_LIMITS, type HistoryLimits } from '../../machines/history.js';

export interface SessionOptions {
  /** Voiced speech (VAD windows, summed across short pauses) that cancels a reply. Default 600 ms. */
  readonly minInterruptionMs?: number;
  /** Or the interim transcript must reach this many words that are not backchannels. Default 0 (word rule off). */
  readonly minInterruptionWords?: number;
  /** Words and phrases that never count toward minInterruptionWords. Default: English backchannels (yeah, uh-huh, okay, …). */
  readonly backchannelWords?: readonly string[];
  /** How long the user's voice must stay paused (from the pause) before an unconfirmed interruption is false and the reply resumes. Default 600 ms. */
  readonly falseInterruptionTimeoutMs?: number;
  /** How long a dropped session waits for a resume. Default 60 000 ms. */
  readonly sessionTtlMs?: number;
  /** Silence after a turn that reads complete before it ends (end-of-turn probability 1). Default 200 ms; must exceed the VAD's pauseMs. */
  readonly minEndpointingMs?: number;
  /** Silence after a turn that reads unfinished ("…a table for"); also the longest wait for recognizer text. Default 1500 ms. */
  readonly maxEndpointingMs?: number;
  /** Start the reply speculatively while the end of turn is decided; commit it if the words hold. Default true. */
  readonly preemptive?: boolean;
  /** Emit `session.idle` after this long listening with no speech and no text. Default 0 (off). */
  readonly userIdleTimeoutMs?: number;
  /** Idle prompts (through the LLM) before the session closes with reason `idle`. Default 1. */
  readonly maxIdlePrompts?: number;
  /** The system instruction for an idle prompt. */
  readonly idlePrompt?: string;
  /** After the end of turn, how long the final transcript may take (a hung stream is given up; batch falls back). Default 5000 ms. */
  readonly sttTimeoutMs?: number;
  readonly reply?: Partial<Pick<ReplySettings, 'ttsLookahead' | 'maxToolRounds'>> & {
    readonly segments?: Partial<ReplySettings['segments']>;
  };
  readonly history?: Partial<HistoryLimits>;
}

export { DEFAULT_SESSION_SETTINGS };

function number(field: string, value: unknown, fallback: number, { min = 0, integer = false } = {}): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ConfigError(field, `must be a finite number, got ${JSON.stringify(value)}`);
  }
  if (value < min) throw new ConfigError(field, `must be >= ${min}, got ${value}`);
  if (integer && !Number.isInteger(value)) throw new ConfigError(field, `must be an integer, got ${value}`);
  return value;
}

function phrases(field: string, value: unknown, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value)) throw new ConfigError(field, `must be an array of words or phrases, got ${JSON.stringify(value)}`);
  return Object.freeze(
    value.map((entry: unknown, i) => {
      if (typeof entry !== 'string' || entry.trim().length === 0) {
        throw new ConfigError(`${field}[${i}]`, `must be a non-empty word or phrase, got ${JSON.stringify(entry)}`);
      }
      return entry.trim().toLowerCase();
    }),
  );
}

function flag(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function text(field: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim().length === 0) throw new ConfigError(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Merges options over the defaults; throws ConfigError naming the field for anything invalid.
 * `vadPauseMs` (the VAD's effective pauseMs, when the session hears audio) must be shorter than
 * minEndpointingMs: the end-of-turn decision starts at the pause.
 */
export function resolveSessionSettings(options: SessionOptions = {}, vadPauseMs?: number): SessionSettings {
  if (typeof options !== 'object' || options === null) throw new ConfigError('session', 'must be an object');
  const d = DEFAULT_SESSION_SETTINGS;
  const reply = options.reply ?? {};
  const segments = reply.segments ?? {};
  const history = options.history ?? {};
  const minChars = number('reply.segments.minChars', segments.minChars, DEFAULT_SEGMENT_OPTIONS.minChars, { integer: true });
  const maxChars = number('reply.segments.maxChars', segments.maxChars, DEFAULT_SEGMENT_OPTIONS.maxChars, { min: 1, integer: true });
  const minEndpointingMs = number('minEndpointingMs', options.minEndpointingMs, d.minEndpointingMs);
  const maxEndpointingMs = number('maxEndpointingMs', options.maxEndpointingMs, d.maxEndpointingMs);
  if (minEndpointingMs > maxEndpointingMs) {
    throw new ConfigError('minEndpointingMs', `must not exceed maxEndpointingMs (${maxEndpointingMs}), got ${minEndpointingMs}`);
  }
  if (vadPauseMs !== undefined && !(vadPauseMs < minEndpointingMs)) {
    throw new ConfigError('minEndpointingMs', `must be longer than the VAD's pauseMs (${vadPauseMs} ms), got ${minEndpointingMs}`);
  }
  return {
    minInterruptionMs: number('minInterruptionMs', options.minInterruptionMs, d.minInterruptionMs),
    minInterruptionWords: number('minInterruptionWords', options.minInterruptionWords, d.minInterruptionWords, { integer: true }),
    backchannelWords: phrases('backchannelWords', options.backchannelWords, d.backchannelWords),
    falseInterruptionTimeoutMs: number('falseInterruptionTimeoutMs', options.falseInterruptionTimeoutMs, d.falseInterruptionTimeoutMs),
    sessionTtlMs: number('sessionTtlMs', options.sessionTtlMs, d.sessionTtlMs, { min: 1 }),
    minEndpointingMs,
    maxEndpointingMs,
    preemptive: flag('preemptive', options.preemptive, d.preemptive),
    userIdleTimeoutMs: number('userIdleTimeoutMs', options.userIdleTimeoutMs, d.userIdleTimeoutMs),
    maxIdlePrompts: number('maxIdlePrompts', options.maxIdlePrompts, d.maxIdlePrompts, { integer: true }),
    idlePrompt: text('idlePrompt', options.idlePrompt, d.idlePrompt),
    sttTimeoutMs: number('sttTimeoutMs', options.sttTimeoutMs, d.sttTimeoutMs, { min: 1 }),
    reply: {
      ttsLookahead: number('reply.ttsLookahead', reply.ttsLookahead, DEFAULT_REPLY_SETTINGS.ttsLookahead, { integer: true }),
      maxToolRounds: number('reply.maxToolRounds', reply.maxToolRounds, DEFAULT_REPLY_SETTINGS.maxToolRounds, { min: 1, integer: true }),
      segments: { minChars, maxChars },
    },
    history: {
      maxMessages: number('history.maxMessages', history.maxMessages, DEFAULT_HISTORY_LIMITS.maxMessages, { min: 1, integer: true }),
      maxChars: number('history.maxChars', history.maxChars, DEFAULT_HISTORY_LIMITS.maxChars, { min: 1, integer: true }),
    },
  };
}
