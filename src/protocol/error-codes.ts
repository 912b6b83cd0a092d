import type { ErrorCode } from '../errors.js';

/**
 * The WebSocket close code a connection is closed with when an error of each code is fatal.
 * 4000–4999 is the range RFC 6455 leaves to applications; the last three digits echo the HTTP
 * status with the same meaning (4400 bad request, 4401 unauthorized, ...), so they read at a glance.
 *
 * The table is typed as `Record<ErrorCode, number>`: adding a code to src/errors.ts without
 * giving it a close code here does not compile.
 */
export const CLOSE_CODES = {
  config_invalid: 4500,
  protocol_invalid_json: 4400,
  protocol_invalid_message: 4400,
  protocol_message_too_large: 4413,
  protocol_unsupported_version: 4426,
  protocol_not_ready: 4400,
  audio_invalid_format: 4400,
  audio_invalid_samples: 4400,
  audio_rate_exceeded: 4429,
  connection_idle: 4408,
  provider_failed: 4502,
  provider_timeout: 4504,
  provider_aborted: 4502,
  provider_rate_limited: 4503,
  provider_auth: 4502,
  provider_bad_response: 4502,
  provider_unavailable: 4503,
  vad_inference_failed: 4500,
  vad_model_missing: 4500,
  transport_failed: 4500,
  session_invalid_state: 4409,
  session_not_found: 4404,
  session_resume_refused: 4403,
  session_expired: 4408,
  session_limit: 4429,
  session_moved: 4409,
  session_store_unavailable: 4503,
  auth_failed: 4401,
  tool_failed: 4500,
  tool_unknown: 4500,
  tool_invalid_arguments: 4500,
  internal: 4500,
} as const satisfies Record<ErrorCode, number>;

/** Every error code that can appear on the wire (`error.code`), in table order. */
export const ERROR_CODES = Object.keys(CLOSE_CODES) as [ErrorCode, ...ErrorCode[]];

/** The close code for a fatal error of `code`. */
export function closeCodeFor(code: ErrorCode): number {
  return CLOSE_CODES[code];
}

/** Normal closure: the session ended on purpose (`session.close`, server shutdown of a finished session). */
export const CLOSE_NORMAL = 1000;

/**
 * True when a client should try to reconnect and resume after the socket closed with `closeCode`.
 * 1000 (normal) and every 44xx code (the client's own fault: bad input, auth, refused or expired
 * resume, limits) are final; network drops (1006), server restarts (1001, 1012) and 45xx
 * server-side failures are worth a resume attempt.
 */
export function isRetryableClose(closeCode: number): boolean {
  if (closeCode === CLOSE_NORMAL || closeCode === 1008) return false;
  return !(closeCode >= 4400 && closeCode <= 4499);
}
