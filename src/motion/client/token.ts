import { MotionError } from '../errors.js';
import { sessionTokensUrl } from './endpoints.js';

export interface SessionTokenRequest {
  /** Console base URL (see resolveEndpoints). */
  readonly consoleUrl: string;
  readonly apiKey: string;
  /** Token lifetime in seconds; the protocol allows (0, 86400]. Default 3600. */
  readonly ttlSeconds?: number;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
}

const MAX_TTL_SECONDS = 24 * 60 * 60;

/** Summarizes a console error body (`{errors:[{status, code|id, title, detail|message}]}`). */
function describeErrors(body: unknown): string {
  if (typeof body !== 'object' || body === null) return '';
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return '';
  return errors
    .map((item: unknown) => {
      const e = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
      const parts = [e['code'] ?? e['id'], e['title'], e['detail'] ?? e['message']].filter(
        (part): part is string | number => typeof part === 'string' || typeof part === 'number',
      );
      return parts.join(': ');
    })
    .filter((text) => text !== '')
    .join('; ');
}

/**
 * Exchanges the API key for a session token: `POST {console}/session-tokens`. The key and the
 * token are never logged or put into an error message.
 */
export async function fetchSessionToken(request: SessionTokenRequest): Promise<string> {
  const ttl = Math.min(Math.max(1, Math.floor(request.ttlSeconds ?? 3600)), MAX_TTL_SECONDS);
  const expireAt = Math.floor(Date.now() / 1000) + ttl;
  const doFetch = request.fetch ?? fetch;
  const timeout = AbortSignal.timeout(request.timeoutMs ?? 10_000);
  const signal = request.signal === undefined ? timeout : AbortSignal.any([timeout, request.signal]);
  let response: Response;
  try {
    response = await doFetch(sessionTokensUrl(request.consoleUrl), {
      method: 'POST',
      headers: { 'X-Api-Key': request.apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ expireAt }),
      signal,
    });
  } catch (error) {
    throw new MotionError('session token request failed: network error', {
      phase: 'token',
      reason: 'network',
      retryable: true,
      cause: error,
    });
  }
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status !== 200) {
    const detail = describeErrors(body);
    const status = response.status;
    throw new MotionError(`session token refused (${status})${detail === '' ? '' : `: ${detail}`}`, {
      phase: 'token',
      reason: 'token_refused',
      status,
      retryable: status >= 500 || status === 429,
    });
  }
  const token = typeof body === 'object' && body !== null ? (body as { sessionToken?: unknown }).sessionToken : undefined;
  if (typeof token !== 'string' || token === '') {
    throw new MotionError('session token response has no sessionToken', { phase: 'token', reason: 'protocol', retryable: false, status: 200 });
  }
  return token;
}
