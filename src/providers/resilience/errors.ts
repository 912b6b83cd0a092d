/**
 * Error mapping: whatever a provider threw becomes a ProviderError with a stable code, a
 * `retryable` flag and no credentials in its message.
 */
import { ProviderError, isAbortError } from '../../errors.js';
import { redactCredentials } from '../../observability/logger.js';
import { abortedError, type ProviderKind } from '../local/streams.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Removes things that look like credentials from an upstream error message (the logs' own patterns). */
export function redactSecrets(message: string): string {
  return redactCredentials(message);
}

/** HTTP status → provider error code and whether another attempt may succeed. */
export function httpStatusError(
  status: number,
  kind: ProviderKind,
  message: string,
  cause?: unknown,
): ProviderError {
  const options = { status, ...(cause === undefined ? {} : { cause }) };
  const text = redactSecrets(message);
  if (status === 429) return new ProviderError('provider_rate_limited', kind, text, { ...options, retryable: true });
  if (status === 401 || status === 403) return new ProviderError('provider_auth', kind, text, options);
  if (status === 408) return new ProviderError('provider_timeout', kind, text, { ...options, retryable: true });
  if (status === 502 || status === 503 || status === 504)
    return new ProviderError('provider_unavailable', kind, text, { ...options, retryable: true });
  if (status >= 500) return new ProviderError('provider_failed', kind, text, { ...options, retryable: true });
  return new ProviderError('provider_failed', kind, text, options);
}

/**
 * Turns anything a provider threw into a ProviderError. Provider modules map their SDK's errors
 * first; this handles what is left: aborts, network errors, parse errors and the unknown.
 */
export function toProviderError(error: unknown, kind: ProviderKind): ProviderError {
  if (error instanceof ProviderError) return error;
  if (isAbortError(error)) return abortedError(kind, error);
  const code = (error as { code?: unknown } | null)?.code;
  const causeCode = ((error as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code;
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  if ((typeof code === 'string' && NETWORK_CODES.has(code)) || (typeof causeCode === 'string' && NETWORK_CODES.has(causeCode)))
    return new ProviderError('provider_unavailable', kind, `network error: ${message}`, { cause: error, retryable: true });
  if (error instanceof SyntaxError)
    return new ProviderError('provider_bad_response', kind, `malformed response: ${message}`, { cause: error });
  return new ProviderError('provider_failed', kind, message, { cause: error });
}

/** `toProviderError`, except that anything thrown after the caller aborted is `provider_aborted`. */
export function mapError(error: unknown, kind: ProviderKind, callerSignal: AbortSignal): ProviderError {
  if (callerSignal.aborted) return abortedError(kind, error);
  return toProviderError(error, kind);
}
