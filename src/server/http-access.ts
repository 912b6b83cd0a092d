/**
 * Who may read the server's observability endpoints (`GET /metrics`, `GET /inspect` and its
 * stream): anyone connecting over loopback; from elsewhere, a caller whose bearer token the
 * server's `auth` hook accepts. Without an `auth` hook, nothing but loopback gets in.
 *
 * The token comes from `Authorization: Bearer <token>`, or from `?token=` (a browser opening
 * /inspect cannot set headers on its WebSocket).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';

/** The `auth` hook of VoiceServerOptions: true / { principal } lets the caller in. */
export type AccessCheck = (token: string | undefined) => boolean | { readonly principal: string } | Promise<boolean | { readonly principal: string }>;

const LOOPBACK_V4 = /^(?:::ffff:)?127(?:\.\d{1,3}){3}$/i;

/** Whether an address is a loopback one (127.0.0.0/8, ::1, or IPv4-mapped 127.x). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || LOOPBACK_V4.test(address);
}

/** Whether a host the server listens on is loopback-only ('127.0.0.1', '::1', 'localhost'). */
export function isLoopbackHost(host: string | undefined): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

/**
 * How many reverse proxies in front of the server append to `X-Forwarded-For`: `false` / 0 (the
 * default) trusts none and counts the socket's address; `true` is 1 (one proxy: the rightmost
 * entry is the address it saw); `n` skips n - 1 more entries from the right. Only entries the
 * trusted proxies wrote are believed: anything to their left is whatever the client sent.
 */
export type TrustProxy = boolean | number;

/** The number of trusted proxies, or a ConfigError. */
export function trustedHops(trustProxy: TrustProxy | undefined): number {
  if (trustProxy === undefined || trustProxy === false) return 0;
  if (trustProxy === true) return 1;
  if (!Number.isInteger(trustProxy) || trustProxy < 0 || trustProxy > 32) {
    throw new ConfigError('trustProxy', `must be true, false or the number of proxies (0..32), got ${JSON.stringify(trustProxy)}`);
  }
  return trustProxy;
}

/** `::ffff:1.2.3.4` written by a dual-stack socket is `1.2.3.4` (the same client either way). */
function plainAddress(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

/** One `X-Forwarded-For` entry as an address: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`; undefined when it is none. */
function forwardedAddress(entry: string): string | undefined {
  const text = entry.trim();
  if (isIP(text) !== 0) return text;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed?.[1] !== undefined && isIP(bracketed[1]) === 6) return bracketed[1];
  const withPort = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(text);
  if (withPort?.[1] !== undefined && isIP(withPort[1]) === 4) return withPort[1];
  return undefined;
}

/**
 * The client's address: the socket's, or behind `hops` trusted proxies the `X-Forwarded-For`
 * entry the outermost of them wrote. A header with fewer entries than `hops` gives its leftmost
 * one (the request passed fewer proxies); no header, or an entry that is not an address, gives the
 * socket's address (a misconfigured proxy must not let every client share one made-up address).
 */
export function clientAddress(request: IncomingMessage, hops: number): string {
  const socketAddress = plainAddress(request.socket.remoteAddress ?? 'unknown');
  if (hops <= 0) return socketAddress;
  const header = request.headers['x-forwarded-for'];
  // Node joins repeated X-Forwarded-For headers with ", ", in order.
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text === undefined || text.trim() === '') return socketAddress;
  const entries = text.split(',');
  const entry = entries[Math.max(0, entries.length - hops)];
  const address = entry === undefined ? undefined : forwardedAddress(entry);
  return address === undefined ? socketAddress : plainAddress(address);
}

/** The bearer token of a request: the Authorization header first, then `?token=`. */
export function requestToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] !== undefined) return match[1];
  }
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
  return query === null || query === '' ? undefined : query;
}

export type AccessVerdict = { readonly ok: true; readonly principal: string | undefined } | { readonly ok: false; readonly status: 401 | 403 };

/**
 * Decides one request. Loopback callers are let in without a token. Others need a token the `auth`
 * hook accepts: no token is 401, a refused one (or no hook) is 403. A hook that throws refuses.
 * Behind trusted proxies (`hops` > 0) the caller is the forwarded client, not the proxy: a proxy on
 * the same machine must not make every caller on the internet a loopback one.
 */
export async function checkAccess(request: IncomingMessage, auth: AccessCheck | undefined, hops = 0): Promise<AccessVerdict> {
  if (isLoopbackAddress(clientAddress(request, hops))) return { ok: true, principal: undefined };
  const token = requestToken(request);
  if (auth === undefined) return { ok: false, status: 403 };
  if (token === undefined) return { ok: false, status: 401 };
  try {
    const result = await auth(token);
    if (result === false) return { ok: false, status: 403 };
    return { ok: true, principal: result === true ? undefined : result.principal };
  } catch {
    return { ok: false, status: 403 };
  }
}
