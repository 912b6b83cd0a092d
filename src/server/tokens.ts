/**
 * Session tokens: short-lived, HMAC-signed proofs that your backend let a user in, for
 * `session.hello.token` (and the bearer token of /metrics and /inspect). Your backend, which
 * knows who the user is, mints one; voxstate checks it with the same secret and no database.
 *
 *   vx1.<payload>.<signature>
 *
 * `payload` is base64url JSON `{ sub, iat, exp, scopes? }` (times in ms since the epoch) and
 * `signature` the base64url HMAC-SHA256 of `vx1.<payload>` under the secret. The version prefix
 * lets a later format be told apart. Tokens are bearer secrets: whoever holds one is `sub` until
 * `exp`, so keep them short-lived and out of logs and URLs you do not control.
 *
 *   const token = createSessionToken({ sub: 'user-42', expiresIn: '15m' }, secret);
 *   new VoiceServer({ ..., auth: tokenAuth(secret) });  // principal = 'user-42'
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { Authenticate } from './voice-server.js';

export const SESSION_TOKEN_PREFIX = 'vx1';

/** The least secret length, in bytes: HMAC-SHA256 is as strong as 256 bits of key. */
export const MIN_SECRET_BYTES = 32;

export type TokenSecret = string | Uint8Array;

export interface SessionTokenClaims {
  /** Who the token speaks for: the session's principal (per-principal limits count by it). */
  readonly sub: string;
  /** Lifetime: milliseconds, or a duration such as `'90s'`, `'15m'`, `'1h'`, `'7d'`. */
  readonly expiresIn: number | string;
  /** What the holder may do; voxstate checks them only when `tokenAuth` is given a `scope`. */
  readonly scopes?: readonly string[];
}

export interface VerifiedSessionToken {
  readonly ok: true;
  readonly sub: string;
  readonly scopes: readonly string[];
  /** When the token stops being valid, ms since the epoch. */
  readonly expiresAt: number;
}

/** Why a token was refused: `malformed` (not a token of this format), `bad_signature` (forged, altered or another secret's), `expired`. */
export type SessionTokenFailure = 'malformed' | 'bad_signature' | 'expired';

export type SessionTokenVerdict = VerifiedSessionToken | { readonly ok: false; readonly reason: SessionTokenFailure };

export interface VerifyOptions {
  /** The current time, ms since the epoch. Default `Date.now()`. */
  readonly now?: number;
  /** Clock difference tolerated between the minting backend and this server. Default 0. */
  readonly leewayMs?: number;
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration in ms: a number of ms, or `<number><ms|s|m|h|d>`. ConfigError naming `field` otherwise. */
export function parseDuration(field: string, value: number | string): number {
  const ms = typeof value === 'number' ? value : durationMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new ConfigError(field, `must be a positive number of ms or a duration such as "90s", "15m", "1h", "7d"; got ${JSON.stringify(value)}`);
  }
  return Math.round(ms);
}

function durationMs(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (match === null) return undefined;
  return Number(match[1]) * (UNITS[(match[2] ?? 'ms').toLowerCase()] ?? Number.NaN);
}

function secretBytes(secret: TokenSecret, field: string): Buffer {
  if (typeof secret !== 'string' && !(secret instanceof Uint8Array)) throw new ConfigError(field, 'must be a string or bytes');
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (bytes.length < MIN_SECRET_BYTES) {
    // The length only: the value of a secret never goes into a message.
    throw new ConfigError(field, `must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes.length}); generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`);
  }
  return bytes;
}

function sign(signed: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

/** Mints a token for `sub`, valid for `expiresIn` from now (or from `now`). */
export function createSessionToken(claims: SessionTokenClaims, secret: TokenSecret, options: { readonly now?: number } = {}): string {
  const key = secretBytes(secret, 'secret');
  if (typeof claims?.sub !== 'string' || claims.sub.length === 0) throw new ConfigError('sub', 'must be a non-empty string');
  const scopes = claims.scopes ?? [];
  if (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string' || scope.length === 0)) throw new ConfigError('scopes', 'must be an array of non-empty strings');
  const iat = Math.floor(options.now ?? Date.now());
  const exp = iat + parseDuration('expiresIn', claims.expiresIn);
  const payload = Buffer.from(JSON.stringify({ sub: claims.sub, iat, exp, ...(scopes.length === 0 ? {} : { scopes }) }), 'utf8').toString('base64url');
  const signed = `${SESSION_TOKEN_PREFIX}.${payload}`;
  return `${signed}.${sign(signed, key).toString('base64url')}`;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

interface Payload {
  readonly sub: string;
  readonly iat: number;
  readonly exp: number;
  readonly scopes: readonly string[];
}

function parsePayload(text: string): Payload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { sub, iat, exp, scopes } = value as Record<string, unknown>;
  if (typeof sub !== 'string' || sub.length === 0 || !Number.isFinite(iat) || !Number.isFinite(exp)) return undefined;
  if (scopes !== undefined && (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string'))) return undefined;
  return { sub, iat: iat as number, exp: exp as number, scopes: (scopes as string[] | undefined) ?? [] };
}

/**
 * Checks a token: its format, its signature (in constant time) under `secret` — or under any of
 * `secret`s, so a secret can be rotated: verify with `[next, current]` while tokens of both are
 * alive, mint with `next` — and its expiry. Never throws for a bad token; a too-short secret is a ConfigError.
 */
export function verifySessionToken(token: unknown, secret: TokenSecret | readonly TokenSecret[], options: VerifyOptions = {}): SessionTokenVerdict {
  const keys = (Array.isArray(secret) ? secret : [secret]).map((s: TokenSecret, i: number) => secretBytes(s, Array.isArray(secret) ? `secret[${i}]` : 'secret'));
  if (keys.length === 0) throw new ConfigError('secret', 'give at least one secret');
  if (typeof token !== 'string') return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== SESSION_TOKEN_PREFIX) return { ok: false, reason: 'malformed' };
  const [, payloadText = '', signatureText = ''] = parts;
  if (!BASE64URL.test(payloadText) || !BASE64URL.test(signatureText)) return { ok: false, reason: 'malformed' };
  const presented = Buffer.from(signatureText, 'base64url');
  const signed = `${SESSION_TOKEN_PREFIX}.${payloadText}`;
  let valid = false;
  for (const key of keys) {
    const expected = sign(signed, key);
    // Every key is tried (no early exit), and the comparison takes the same time wherever the bytes differ.
    if (presented.length === expected.length && timingSafeEqual(presented, expected)) valid = true;
  }
  if (!valid) return { ok: false, reason: 'bad_signature' };
  // Only a payload this server's secret signed is parsed.
  const payload = parsePayload(payloadText);
  if (payload === undefined) return { ok: false, reason: 'malformed' };
  const now = options.now ?? Date.now();
  if (now > payload.exp + Math.max(0, options.leewayMs ?? 0)) return { ok: false, reason: 'expired' };
  return { ok: true, sub: payload.sub, scopes: payload.scopes, expiresAt: payload.exp };
}

export interface TokenAuthOptions {
  /** The token must carry this scope. Default: any valid token. */
  readonly scope?: string;
  readonly leewayMs?: number;
  /** Told why each token was refused (log it; the token itself is not passed). */
  readonly onRefused?: (reason: SessionTokenFailure | 'missing' | 'scope') => void;
}

/**
 * An `auth` hook for VoiceServer that accepts session tokens signed with `secret` (or any of
 * `secret`s): the session's principal is the token's `sub`. Checks the secret now, not at the first hello.
 */
export function tokenAuth(secret: TokenSecret | readonly TokenSecret[], options: TokenAuthOptions = {}): Authenticate {
  for (const [i, s] of (Array.isArray(secret) ? secret : [secret]).entries()) secretBytes(s as TokenSecret, Array.isArray(secret) ? `secret[${i}]` : 'secret');
  return (token) => {
    if (token === undefined || token === '') {
      options.onRefused?.('missing');
      return false;
    }
    const verdict = verifySessionToken(token, secret, options.leewayMs === undefined ? {} : { leewayMs: options.leewayMs });
    if (!verdict.ok) {
      options.onRefused?.(verdict.reason);
      return false;
    }
    if (options.scope !== undefined && !verdict.scopes.includes(options.scope)) {
      options.onRefused?.('scope');
      return false;
    }
    return { principal: verdict.sub };
  };
}
