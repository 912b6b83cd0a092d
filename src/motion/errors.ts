import { VoxError, type ErrorCode, type VoxErrorOptions } from '../errors.js';
import { MOTION_CLOSE_CODES, SERVER_ERROR_CODES } from './protocol/types.js';

/** Where on the way to (or on) a Motion Server connection an error happened. */
export type MotionPhase = 'token' | 'connect' | 'handshake' | 'stream' | 'closed';

/** A stable, specific reason; `code` stays within voxstate's shared ErrorCode set. */
export type MotionReason =
  | 'token_refused'
  | 'token_expired'
  | 'token_invalid'
  | 'app_unrecognized'
  | 'avatar_not_found'
  | 'billing_required'
  | 'upgrade_refused'
  | 'handshake_timeout'
  | 'handshake_rejected'
  | 'protocol'
  | 'server_error'
  | 'credits_exhausted'
  | 'session_timeout'
  | 'concurrency_limit'
  | 'auth_failed'
  | 'upstream_unavailable'
  | 'network'
  | 'closed_by_server'
  | 'not_connected';

export interface MotionErrorOptions extends VoxErrorOptions {
  readonly phase: MotionPhase;
  readonly reason: MotionReason;
  /** True when opening a fresh connection (after a backoff) may succeed. */
  readonly retryable: boolean;
  readonly status?: number;
  readonly serverCode?: number;
  readonly closeCode?: number;
  readonly closeReason?: string;
  readonly reqId?: string;
}

const CODE_OF_REASON: Record<MotionReason, ErrorCode> = {
  token_refused: 'provider_auth',
  token_expired: 'provider_auth',
  token_invalid: 'provider_auth',
  app_unrecognized: 'config_invalid',
  avatar_not_found: 'config_invalid',
  billing_required: 'provider_rate_limited',
  upgrade_refused: 'provider_failed',
  handshake_timeout: 'provider_timeout',
  handshake_rejected: 'provider_failed',
  protocol: 'protocol_invalid_message',
  server_error: 'provider_failed',
  credits_exhausted: 'provider_rate_limited',
  session_timeout: 'provider_unavailable',
  concurrency_limit: 'provider_rate_limited',
  auth_failed: 'provider_auth',
  upstream_unavailable: 'provider_unavailable',
  network: 'provider_unavailable',
  closed_by_server: 'provider_unavailable',
  not_connected: 'session_invalid_state',
};

/** Anything that went wrong talking to a Motion Server, with the facts needed to decide a retry. */
export class MotionError extends VoxError {
  override readonly name = 'MotionError';
  readonly phase: MotionPhase;
  readonly reason: MotionReason;
  readonly retryable: boolean;
  /** HTTP status of a refused token request or WebSocket upgrade. */
  readonly status: number | undefined;
  /** `ServerError.code`. */
  readonly serverCode: number | undefined;
  /** WebSocket close code. */
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  readonly reqId: string | undefined;

  constructor(message: string, options: MotionErrorOptions) {
    super(CODE_OF_REASON[options.reason], message, options.cause === undefined ? {} : { cause: options.cause });
    this.phase = options.phase;
    this.reason = options.reason;
    this.retryable = options.retryable;
    this.status = options.status;
    this.serverCode = options.serverCode;
    this.closeCode = options.closeCode;
    this.closeReason = options.closeReason;
    this.reqId = options.reqId;
  }

  override toJSON(): ReturnType<VoxError['toJSON']> & Record<string, unknown> {
    return {
      ...super.toJSON(),
      phase: this.phase,
      reason: this.reason,
      retryable: this.retryable,
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.serverCode === undefined ? {} : { serverCode: this.serverCode }),
      ...(this.closeCode === undefined ? {} : { closeCode: this.closeCode }),
      ...(this.closeReason === undefined ? {} : { closeReason: this.closeReason }),
    };
  }
}

/**
 * The documented retry decision for a WebSocket close code:
 * 4001 credits exhausted, 4003 concurrency limit, 4010 auth failed → fatal;
 * 4002 session timeout, 4503 upstream unavailable, 1000/1001/1006/1011-1013 (idle close, going
 * away, network drop, server restart) → reconnect with backoff; 1002/1003/1007/1008 (the server
 * says we broke the protocol or policy) → fatal, reconnecting would repeat the mistake.
 */
export function closeError(code: number, reason: string, phase: MotionPhase): MotionError {
  const facts = { phase, closeCode: code, closeReason: reason } as const;
  switch (code) {
    case MOTION_CLOSE_CODES.creditsExhausted:
      return new MotionError(`Motion Server closed: credits exhausted (${code})`, { ...facts, reason: 'credits_exhausted', retryable: false });
    case MOTION_CLOSE_CODES.sessionTimeout:
      return new MotionError(`Motion Server closed: session timeout (${code})`, { ...facts, reason: 'session_timeout', retryable: true });
    case MOTION_CLOSE_CODES.concurrencyLimit:
      return new MotionError(`Motion Server closed: concurrency limit (${code})`, { ...facts, reason: 'concurrency_limit', retryable: false });
    case MOTION_CLOSE_CODES.authFailed:
      return new MotionError(`Motion Server closed: authentication failed (${code})`, { ...facts, reason: 'auth_failed', retryable: false });
    case MOTION_CLOSE_CODES.upstreamUnavailable:
      return new MotionError(`Motion Server closed: upstream unavailable (${code})`, { ...facts, reason: 'upstream_unavailable', retryable: true });
    case 1002:
    case 1003:
    case 1007:
    case 1008:
      return new MotionError(`Motion Server closed: protocol violation (${code}${reason === '' ? '' : `: ${reason}`})`, {
        ...facts,
        reason: 'protocol',
        retryable: false,
      });
    case 1006:
      return new MotionError('Motion Server connection dropped', { ...facts, reason: 'network', retryable: true });
    default:
      return new MotionError(`Motion Server closed the connection (${code})`, { ...facts, reason: 'closed_by_server', retryable: true });
  }
}

/**
 * A refused WebSocket upgrade, by its HTTP status: 401 expired, 400 invalid token, 404 app or avatar
 * (the body says which), 402 billing. A 400 or 404 whose body names none of those (a proxy's page,
 * a wrong ingress path) is `upgrade_refused` with its status, not a guess at a token or app problem.
 */
export function upgradeError(status: number, body: string): MotionError {
  const facts = { phase: 'connect', status } as const;
  const refused = (retryable: boolean): MotionError =>
    new MotionError(`Motion Server refused the WebSocket upgrade (HTTP ${status})`, { ...facts, reason: 'upgrade_refused', retryable });
  switch (status) {
    case 401:
      // A fresh token is fetched for every connection attempt, so an expired one is worth one more try.
      return new MotionError('Motion Server refused the session token: expired (401)', { ...facts, reason: 'token_expired', retryable: true });
    case 400:
      return /token|session.?key/i.test(body)
        ? new MotionError('Motion Server refused the session token: invalid (400)', { ...facts, reason: 'token_invalid', retryable: false })
        : refused(false);
    case 404:
      if (/avatar/i.test(body)) return new MotionError('Motion Server: avatar not found (404)', { ...facts, reason: 'avatar_not_found', retryable: false });
      if (/\bapp/i.test(body)) return new MotionError('Motion Server: app not recognized (404)', { ...facts, reason: 'app_unrecognized', retryable: false });
      return refused(false);
    case 402:
      return new MotionError('Motion Server: billing required (402)', { ...facts, reason: 'billing_required', retryable: false });
    default:
      return refused(status >= 500 || status === 429);
  }
}

/** `ServerError` codes: 14 unavailable and 4002 duration exceeded are retryable; the rest are not. */
export function serverErrorRetryable(code: number): boolean {
  return code === SERVER_ERROR_CODES.unavailable || code === SERVER_ERROR_CODES.durationExceeded;
}
