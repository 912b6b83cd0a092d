/**
 * The closed set of error classes voxstate throws or reports. Every error has a stable `code`
 * (documented in docs/protocol.md) that clients and logs can rely on; the message is for humans.
 */

export type ErrorCode =
  // configuration
  | 'config_invalid'
  // wire protocol / client input
  | 'protocol_invalid_json'
  | 'protocol_invalid_message'
  | 'protocol_message_too_large'
  | 'protocol_unsupported_version'
  | 'protocol_not_ready'
  | 'audio_invalid_format'
  | 'audio_invalid_samples'
  | 'audio_rate_exceeded'
  | 'connection_idle'
  // providers
  | 'provider_failed'
  | 'provider_timeout'
  | 'provider_aborted'
  | 'provider_rate_limited'
  | 'provider_auth'
  | 'provider_bad_response'
  | 'provider_unavailable'
  // VAD
  | 'vad_inference_failed'
  | 'vad_model_missing'
  // transports
  | 'transport_failed'
  // session lifecycle
  | 'session_invalid_state'
  | 'session_not_found'
  | 'session_resume_refused'
  | 'session_expired'
  | 'session_limit'
  | 'session_moved'
  | 'session_store_unavailable'
  | 'auth_failed'
  // tools
  | 'tool_failed'
  | 'tool_unknown'
  | 'tool_invalid_arguments'
  // anything else
  | 'internal';

export interface VoxErrorOptions {
  cause?: unknown;
}

export abstract class VoxError extends Error {
  abstract override readonly name: string;
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: VoxErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  toJSON(): { name: string; code: ErrorCode; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** Invalid options passed to a constructor or factory. Names the offending field. */
export class ConfigError extends VoxError {
  override readonly name = 'ConfigError';
  readonly field: string;

  constructor(field: string, message: string, options: VoxErrorOptions = {}) {
    super('config_invalid', `${field}: ${message}`, options);
    this.field = field;
  }
}

/** Input from a client or peer that breaks the wire contract. */
export class ProtocolError extends VoxError {
  override readonly name = 'ProtocolError';
}

/** Audio that cannot be used as given (rate, layout, samples). */
export class AudioFormatError extends VoxError {
  override readonly name = 'AudioFormatError';
}

/** A speech-to-text, language-model or text-to-speech call that failed. */
export class ProviderError extends VoxError {
  override readonly name = 'ProviderError';
  /** Which provider kind failed. */
  readonly provider: 'stt' | 'llm' | 'tts' | 'other';
  /** True when trying again may succeed (rate limit, 5xx, network). */
  readonly retryable: boolean;
  readonly status: number | undefined;

  constructor(
    code: ErrorCode,
    provider: 'stt' | 'llm' | 'tts' | 'other',
    message: string,
    options: VoxErrorOptions & { retryable?: boolean; status?: number } = {},
  ) {
    super(code, message, options);
    this.provider = provider;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }
}

/** The voice activity detector could not run. */
export class VadError extends VoxError {
  override readonly name = 'VadError';
}

/** An audio transport that stopped working under its session (e.g. its WebRTC worker thread died). */
export class TransportError extends VoxError {
  override readonly name = 'TransportError';
}

/** An operation that the current state does not allow. */
export class InvalidStateError extends VoxError {
  override readonly name = 'InvalidStateError';
}

/** A session lookup, resume or limit failure. */
export class SessionError extends VoxError {
  override readonly name = 'SessionError';
}

/**
 * A versioned session-store write that the store refused: the stored record moved on since this
 * node last read or wrote it (another node resumed the session and now holds it), or the session
 * ended there. The writer must not try again.
 */
export class StaleSessionWriteError extends VoxError {
  override readonly name = 'StaleSessionWriteError';
  readonly sessionId: string;
  /** The version the write expected, and the one the store holds (0: no record). */
  readonly expectedVersion: number;
  readonly storedVersion: number;

  constructor(sessionId: string, expectedVersion: number, storedVersion: number) {
    super('session_moved', `session ${sessionId}: the stored record is at version ${storedVersion}, not ${expectedVersion} (held elsewhere now)`);
    this.sessionId = sessionId;
    this.expectedVersion = expectedVersion;
    this.storedVersion = storedVersion;
  }
}

/** The session store could not be reached or did not answer (Redis down, a timeout). Worth retrying. */
export class SessionStoreError extends VoxError {
  override readonly name = 'SessionStoreError';

  constructor(message: string) {
    super('session_store_unavailable', message);
  }
}

/** A tool call that could not be executed. */
export class ToolError extends VoxError {
  override readonly name = 'ToolError';
}

export function isVoxError(value: unknown): value is VoxError {
  return value instanceof VoxError;
}

/** Wraps anything thrown into a VoxError so it can be reported with a code. */
export function toVoxError(value: unknown, fallback: ErrorCode = 'internal'): VoxError {
  if (value instanceof VoxError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new InvalidStateError(fallback, message, { cause: value });
}

/** True for the error a cancelled operation throws (DOM AbortError or our provider_aborted). */
export function isAbortError(value: unknown): boolean {
  if (value instanceof VoxError) return value.code === 'provider_aborted';
  return value instanceof Error && (value.name === 'AbortError' || value.name === 'APIUserAbortError');
}
