import { InvalidStateError, ProtocolError, SessionError, type ErrorCode, type VoxError } from '../errors.js';
import { CLOSE_CODES } from '../protocol/error-codes.js';
import type { ServerMessageOf } from '../protocol/messages.js';
import type { VoxClientError } from './client-types.js';

export function fromMessage(message: ServerMessageOf<'error'>): Omit<VoxClientError, 'source'> {
  return { code: message.code, message: message.message, fatal: message.fatal };
}

/** Resume failures that retrying cannot fix. */
export function isFinalResumeError(code: ErrorCode): boolean {
  return code === 'session_resume_refused' || code === 'session_not_found' || code === 'session_expired' || code === 'auth_failed';
}

/** The error a refused handshake rejects with; `closeCode` is the close code a fatal error implies. */
export function errorFor(code: ErrorCode, message: string, fatal: boolean): VoxError & { closeCode?: number } {
  const error: VoxError & { closeCode?: number } =
    code.startsWith('protocol_') || code.startsWith('audio_')
      ? new ProtocolError(code, message)
      : code.startsWith('session_') || code === 'auth_failed'
        ? new SessionError(code, message)
        : new InvalidStateError(code, message);
  if (fatal) error.closeCode = CLOSE_CODES[code];
  return error;
}

export function closeError(code: number, reason: string, fallback: string): VoxError & { closeCode: number } {
  const error = new InvalidStateError('internal', reason === '' ? `${fallback} (close code ${code})` : reason) as InvalidStateError & {
    closeCode: number;
  };
  error.closeCode = code;
  return error;
}

export function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.every((part) => part instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.byteLength;
    }
    return out;
  }
  return undefined;
}
