/**
 * Resilience for providers: timeouts, retries with exponential backoff and full jitter, fallback
 * between providers of one kind with recovery after a cool-down, and a cap on concurrent calls.
 *
 * Each wrapper takes a provider and returns a provider of the same kind, so they compose:
 *   withConcurrency(withResilience(fallback([openai, local])), 8)
 *
 * Only idempotent work is retried: `transcribe`, a TTS stream before its first chunk, an LLM stream
 * before its first event, and a streaming STT call before its first transcript (the audio consumed so
 * far is replayed to the next attempt, up to `maxReplaySeconds`). Once output has reached the
 * caller, an error is passed on: repeating it would duplicate what the user already heard.
 */
export { providerKind, type AnyProvider } from './kind.js';
export { httpStatusError, redactSecrets, toProviderError } from './errors.js';
export type { TimeoutOptions } from './deadline.js';
export { backoffDelay, withResilience, type ResilienceOptions, type RetryOptions } from './retry.js';
export { fallback, type FallbackOptions } from './fallback.js';
export { sttStreamOf } from './stt-stream.js';
export { withConcurrency } from './concurrency.js';
