/**
 * What the inspector may show of a value: a JSON-safe copy with secrets redacted, binary data
 * summarized, actor references named, and long strings and arrays shortened.
 *
 * A property is a secret by its name (`token`, `resumeToken`, `apiKey`, `password`, `secret`,
 * `authorization`, `credentials`, … — see `isSecretKey`), whatever its value; a string holding
 * JSON (a tool call's arguments) is scrubbed as the object it holds. A known secret (a session's
 * resume token) is cut out of every string, wherever it occurs.
 */

import { REDACTED } from '../observability/logger.js';

export { REDACTED };

export interface ScrubLimits {
  /** Nesting below which objects are replaced by `'[…]'`. */
  readonly maxDepth: number;
  /** Longest string kept whole; longer ones end with `…(+N)`. */
  readonly maxString: number;
  /** Array items (and object keys) kept; the rest are counted in a last `'… N more'` entry. */
  readonly maxItems: number;
  /**
   * `scrubbedJson` only: once about this many characters of strings are written, the rest of the
   * value is cut the same way (shortened strings, `'… N more'` entries). Default: no limit.
   */
  readonly maxChars?: number;
}

/** The inspector's log: compact (the page shows a line of each entry). */
export const LOG_LIMITS: ScrubLimits = { maxDepth: 4, maxString: 160, maxItems: 8, maxChars: 400 };
/** Events forwarded to other tools (`inspect.forward`): fuller. */
export const FORWARD_LIMITS: ScrubLimits = { maxDepth: 10, maxString: 4000, maxItems: 200 };

const SECRET_SUFFIXES = ['token', 'secret', 'password', 'passwd', 'apikey', 'credential', 'credentials', 'privatekey', 'authorization', 'cookie', 'tokenhash'];

/** Property names seen, and whether each is a secret (names repeat: events are few shapes). */
const secretKeys = new Map<string, boolean>();
const MAX_KEYS_REMEMBERED = 10_000;

/** Whether a property name holds a secret: `token`, `resumeToken`, `api_key`, `clientSecret`; not `maxTokens`. */
export function isSecretKey(key: string): boolean {
  let secret = secretKeys.get(key);
  if (secret === undefined) {
    const flat = key.toLowerCase().replace(/[_-]/g, '');
    secret = SECRET_SUFFIXES.some((suffix) => flat.endsWith(suffix));
    if (secretKeys.size < MAX_KEYS_REMEMBERED) secretKeys.set(key, secret);
  }
  return secret;
}

function isBinary(value: object): value is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer);
}

function binarySummary(value: ArrayBufferView | ArrayBuffer): { readonly binary: string; readonly length: number } {
  const length = ArrayBuffer.isView(value) ? ('length' in value && typeof value.length === 'number' ? value.length : value.byteLength) : value.byteLength;
  return { binary: value.constructor.name, length };
}

/** An actor reference (XState's ActorRef): named by its id instead of walked. */
function isActorRef(value: object): value is { id: string; sessionId: string } {
  const ref = value as { sessionId?: unknown; send?: unknown; id?: unknown };
  return typeof ref.sessionId === 'string' && typeof ref.send === 'function' && typeof ref.id === 'string';
}

function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0 && out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/** Longest string tried as JSON. */
const MAX_JSON_STRING = 65_536;

/** The object or array a string holds as JSON, if it is one. */
function parsedObject(text: string): object | undefined {
  const first = text.charCodeAt(0);
  // '{' or '['
  if ((first !== 123 && first !== 91) || text.length > MAX_JSON_STRING) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…(+${text.length - max})`;
}

/** What `scrubbedJson` may still write (characters of strings); Infinity without `maxChars`. */
interface Budget {
  left: number;
}

const UNLIMITED: Budget = { left: Number.POSITIVE_INFINITY };

/** What a string becomes: secrets cut out, JSON in it scrubbed as the object it holds, shortened. */
function scrubString(text: string, depth: number, limits: ScrubLimits, secrets: readonly string[], ancestors: object[], budget: Budget = UNLIMITED): string {
  const clean = secrets.length === 0 ? text : redactSecrets(text, secrets);
  const json = parsedObject(clean);
  const whole = json === undefined ? clean : (write(json, depth, limits, secrets, ancestors, budget) ?? 'null');
  const out = shorten(whole, Math.max(0, Math.min(limits.maxString, budget.left)));
  budget.left -= out.length;
  return out;
}

/** An object's entries as scrub sees them: a Map's (keys as strings), or its own enumerable ones. */
function entriesOf(object: object): readonly (readonly [string, unknown])[] {
  if (object instanceof Map) return [...object.entries()].map(([k, v]) => [String(k), v] as const);
  return Object.entries(object);
}

/** The scrubbed, JSON-safe copy of `value`. `secrets`: exact strings to cut out of every string. */
export function scrub(value: unknown, limits: ScrubLimits = LOG_LIMITS, secrets: readonly string[] = []): unknown {
  return copy(value, 0, limits, secrets, []);
}

function copy(input: unknown, depth: number, limits: ScrubLimits, secrets: readonly string[], ancestors: object[]): unknown {
  switch (typeof input) {
    case 'string':
      return scrubString(input, depth, limits, secrets, ancestors);
    case 'number':
      return Number.isFinite(input) ? input : String(input);
    case 'boolean':
    case 'undefined':
      return input;
    case 'bigint':
    case 'symbol':
      return input.toString();
    case 'function':
      return { function: input.name || 'anonymous' };
    default:
      break;
  }
  if (input === null) return null;
  const object = input as object;
  if (isBinary(object)) return binarySummary(object);
  if (isActorRef(object)) return { actor: object.id };
  if (object instanceof Date) return object.toISOString();
  if (object instanceof Error) {
    const code = (object as { code?: unknown }).code;
    return { error: object.name, message: copy(object.message, depth + 1, limits, secrets, ancestors), ...(typeof code === 'string' ? { code } : {}) };
  }
  if (ancestors.includes(object)) return '[circular]';
  if (depth >= limits.maxDepth) return '[…]';
  ancestors.push(object);
  let out: unknown;
  if (Array.isArray(object) || object instanceof Set) {
    const items: readonly unknown[] = Array.isArray(object) ? object : [...(object as Set<unknown>)];
    const kept: unknown[] = [];
    for (let i = 0; i < Math.min(items.length, limits.maxItems); i++) kept.push(copy(items[i], depth + 1, limits, secrets, ancestors));
    if (items.length > limits.maxItems) kept.push(`… ${items.length - limits.maxItems} more`);
    out = kept;
  } else {
    const entries = entriesOf(object);
    const fields: Record<string, unknown> = {};
    for (let i = 0; i < entries.length; i++) {
      if (i === limits.maxItems) {
        fields['…'] = `${entries.length - i} more`;
        break;
      }
      const [key, item] = entries[i] as readonly [string, unknown];
      fields[key] = isSecretKey(key) && item !== undefined && item !== null ? REDACTED : copy(item, depth + 1, limits, secrets, ancestors);
    }
    out = fields;
  }
  ancestors.pop();
  return out;
}

/**
 * `JSON.stringify(scrub(value, limits, secrets))`, written directly: an object of numbers, booleans
 * and short plain strings (most events) is stringified as it is, anything else without the copy.
 */
export function scrubbedJson(value: unknown, limits: ScrubLimits = LOG_LIMITS, secrets: readonly string[] = []): string {
  if (typeof value === 'object' && value !== null && isFlatAndClean(value as Record<string, unknown>, limits, secrets)) return JSON.stringify(value);
  return write(value, 0, limits, secrets, [], { left: limits.maxChars ?? Number.POSITIVE_INFINITY }) ?? 'null';
}

const quote = (text: string): string => JSON.stringify(text);

/** The JSON text of `copy(input)`; undefined where JSON.stringify leaves a value out. */
function write(input: unknown, depth: number, limits: ScrubLimits, secrets: readonly string[], ancestors: object[], budget: Budget): string | undefined {
  switch (typeof input) {
    case 'string':
      return quote(scrubString(input, depth, limits, secrets, ancestors, budget));
    case 'number':
      return Number.isFinite(input) ? String(input) : quote(String(input));
    case 'boolean':
      return input ? 'true' : 'false';
    case 'undefined':
      return undefined;
    case 'bigint':
    case 'symbol':
      return quote(input.toString());
    case 'function':
      return `{"function":${quote(input.name || 'anonymous')}}`;
    default:
      break;
  }
  if (input === null) return 'null';
  const object = input as object;
  if (isBinary(object)) {
    const { binary, length } = binarySummary(object);
    return `{"binary":${quote(binary)},"length":${length}}`;
  }
  if (isActorRef(object)) return `{"actor":${quote(object.id)}}`;
  if (object instanceof Date) return quote(object.toISOString());
  if (object instanceof Error) {
    const code = (object as { code?: unknown }).code;
    return `{"error":${quote(object.name)},"message":${write(object.message, depth + 1, limits, secrets, ancestors, budget) ?? 'null'}${typeof code === 'string' ? `,"code":${quote(code)}` : ''}}`;
  }
  if (ancestors.includes(object)) return '"[circular]"';
  if (depth >= limits.maxDepth) return '"[…]"';
  ancestors.push(object);
  const parts: string[] = [];
  let out: string;
  if (Array.isArray(object) || object instanceof Set) {
    const items: readonly unknown[] = Array.isArray(object) ? object : [...(object as Set<unknown>)];
    const kept = Math.min(items.length, limits.maxItems);
    let i = 0;
    for (; i < kept && budget.left > 0; i++) parts.push(write(items[i], depth + 1, limits, secrets, ancestors, budget) ?? 'null');
    if (items.length > i) parts.push(quote(`… ${items.length - i} more`));
    out = `[${parts.join(',')}]`;
  } else if (object instanceof Map) {
    const entries = entriesOf(object);
    for (let i = 0; i < entries.length; i++) {
      if (i === limits.maxItems || budget.left <= 0) {
        parts.push(`"…":${quote(`${entries.length - i} more`)}`);
        break;
      }
      const [key, item] = entries[i] as readonly [string, unknown];
      const text = isSecretKey(key) && item !== undefined && item !== null ? quote(REDACTED) : write(item, depth + 1, limits, secrets, ancestors, budget);
      if (text !== undefined) parts.push(`${quote(key)}:${text}`);
    }
    out = `{${parts.join(',')}}`;
  } else {
    const keys = Object.keys(object);
    const record = object as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) {
      if (i === limits.maxItems || budget.left <= 0) {
        parts.push(`"…":${quote(`${keys.length - i} more`)}`);
        break;
      }
      const key = keys[i] as string;
      const item = record[key];
      const text = isSecretKey(key) && item !== undefined && item !== null ? quote(REDACTED) : write(item, depth + 1, limits, secrets, ancestors, budget);
      if (text !== undefined) parts.push(`${quote(key)}:${text}`);
    }
    out = `{${parts.join(',')}}`;
  }
  ancestors.pop();
  return out;
}

function isFlatAndClean(object: Record<string, unknown>, limits: ScrubLimits, secrets: readonly string[]): boolean {
  if (Array.isArray(object) || Object.getPrototypeOf(object) !== Object.prototype) return false;
  let keys = 0;
  for (const key in object) {
    if (++keys > limits.maxItems || isSecretKey(key)) return false;
    const value = object[key];
    switch (typeof value) {
      case 'boolean':
      case 'undefined':
        break;
      case 'number':
        if (!Number.isFinite(value)) return false;
        break;
      case 'string': {
        const first = value.charCodeAt(0);
        if (value.length > limits.maxString || first === 123 || first === 91) return false;
        for (const secret of secrets) if (secret.length > 0 && value.includes(secret)) return false;
        break;
      }
      default:
        if (value !== null) return false;
    }
  }
  return true;
}
