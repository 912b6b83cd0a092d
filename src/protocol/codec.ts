/**
 * Pure codecs for the JSON half of the wire protocol: text (or UTF-8 bytes) in, a typed message or
 * a ProtocolError out. No sockets, no logging; the server and the client each wrap these.
 */
import type { z } from 'zod';
import { ProtocolError } from '../errors.js';
import {
  PROTOCOL_VERSION,
  clientMessageSchema,
  serverMessageSchema,
  type ClientMessage,
  type ServerMessage,
} from './messages.js';

/** Default cap on one client → server JSON message (ws `maxPayload` should be at least this). */
export const DEFAULT_MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** Default cap on one server → client JSON message (avatar frame batches are the largest). */
export const DEFAULT_MAX_SERVER_MESSAGE_BYTES = 4 * 1024 * 1024;

export type ParseResult<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly error: ProtocolError };

/** Messages whose `protocol` field is checked before the rest of the message. */
const VERSIONED_TYPES = new Set(['session.hello', 'session.resume', 'session.ready']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses one client → server text message. Never throws. */
export function parseClientMessage(
  data: string | Uint8Array,
  maxBytes: number = DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
): ParseResult<ClientMessage> {
  return parseWith(clientMessageSchema, data, maxBytes);
}

/** Parses one server → client text message. Never throws. */
export function parseServerMessage(
  data: string | Uint8Array,
  maxBytes: number = DEFAULT_MAX_SERVER_MESSAGE_BYTES,
): ParseResult<ServerMessage> {
  return parseWith(serverMessageSchema, data, maxBytes);
}

/** Validates and encodes a client → server message. Throws ProtocolError on an invalid message. */
export function serializeClientMessage(message: ClientMessage): string {
  return serializeWith(clientMessageSchema, message);
}

/** Validates and encodes a server → client message. Throws ProtocolError on an invalid message. */
export function serializeServerMessage(message: ServerMessage): string {
  return serializeWith(serverMessageSchema, message);
}

/** Number of bytes `text` takes in UTF-8, without allocating. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function exceedsLimit(text: string, maxBytes: number): boolean {
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes: decide cheaply when the answer is obvious.
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return utf8ByteLength(text) > maxBytes;
}

function parseWith<S extends z.ZodType>(schema: S, data: string | Uint8Array, maxBytes: number): ParseResult<z.infer<S>> {
  let text: string;
  if (typeof data === 'string') {
    if (exceedsLimit(data, maxBytes)) return tooLarge(maxBytes);
    text = data;
  } else {
    if (data.byteLength > maxBytes) return tooLarge(maxBytes);
    try {
      text = utf8.decode(data);
    } catch (error) {
      return fail('protocol_invalid_json', 'message is not valid UTF-8', error);
    }
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail('protocol_invalid_json', 'message is not valid JSON', error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('protocol_invalid_message', 'message must be a JSON object');
  }
  const { type, protocol } = value as { type?: unknown; protocol?: unknown };
  if (typeof type !== 'string') return fail('protocol_invalid_message', 'message has no string "type"');
  // Checked before the schema: a newer client's hello may have a different shape altogether.
  if (VERSIONED_TYPES.has(type) && typeof protocol === 'number' && protocol !== PROTOCOL_VERSION) {
    return fail(
      'protocol_unsupported_version',
      `${type}: protocol version ${String(protocol)} is not supported (this side speaks ${PROTOCOL_VERSION})`,
    );
  }

  const result = schema.safeParse(value);
  if (!result.success) return fail('protocol_invalid_message', describeIssues(type, result.error));
  return { ok: true, message: result.data };
}

function serializeWith<S extends z.ZodType>(schema: S, message: z.infer<S>): string {
  const result = schema.safeParse(message);
  if (!result.success) {
    const type = typeof message === 'object' && message !== null ? String((message as { type?: unknown }).type) : '?';
    throw new ProtocolError('protocol_invalid_message', describeIssues(type, result.error));
  }
  return JSON.stringify(result.data);
}

/** One line naming each bad field. Values are never echoed: they may be tokens. */
function describeIssues(type: string, error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String).join('.');
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  const more = error.issues.length > 5 ? ` (+${error.issues.length - 5} more)` : '';
  return `${type.slice(0, 64)}: ${shown.join('; ')}${more}`;
}

function tooLarge(maxBytes: number): { ok: false; error: ProtocolError } {
  return fail('protocol_message_too_large', `message exceeds ${maxBytes} bytes`);
}

function fail(
  code: 'protocol_invalid_json' | 'protocol_invalid_message' | 'protocol_message_too_large' | 'protocol_unsupported_version',
  message: string,
  cause?: unknown,
): { ok: false; error: ProtocolError } {
  return { ok: false, error: new ProtocolError(code, message, cause === undefined ? {} : { cause }) };
}
