/**
 * Who may read the server's observability endpoints (`GET /metrics`, `GET /inspect` and its
 * stream): anyone connecting over loopback; from elsewhere, a caller whose bearer token the
 * server's `auth` hook accepts. Without an `auth` hook, nothing but loopback gets in.
 *
 * The token comes from `Authorization: Bearer <token>`, or from `?token=` (a browser opening
 * /inspect cannot set headers on its WebSocket).
 */
import type { IncomingMessage } from 'node:http';

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
 */
export async function checkAccess(request: IncomingMessage, auth: AccessCheck | undefined): Promise<AccessVerdict> {
  if (isLoopbackAddress(request.socket.remoteAddress)) return { ok: true, principal: undefined };
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
