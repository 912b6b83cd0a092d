/**
 * Which web pages may open a WebSocket to this server. A browser sends `Origin` with every
 * WebSocket upgrade and lets any page connect anywhere, so without this check any site the
 * developer visits could drive the agent with the developer's provider keys (cross-site WebSocket
 * hijacking). Clients that are not browsers send no `Origin` and are not affected: the check is
 * about pages, authentication is the `auth` hook's job.
 *
 * Allowed by default: the server's own origin (the page it serves itself, whatever name it was
 * reached by: the origin whose host is the request's `Host`), and loopback origins
 * (`http(s)://localhost`, `127.0.0.1`, `[::1]`, any port: a dev server on the same machine).
 * `allowedOrigins` adds exact origins; `'*'` allows every page (unsafe: any site can connect);
 * `'null'` allows the opaque origin of sandboxed iframes and file:// pages, refused otherwise.
 *
 * DNS rebinding: a page on evil.example whose name the attacker re-points at 127.0.0.1 connects
 * to a server on loopback with `Origin: http://evil.example:8080` and `Host: evil.example:8080`,
 * which would pass as "the server's own origin". So a request that reached this server through a
 * loopback interface counts as same-origin only when its `Host` is a loopback name too (or the
 * server trusts a proxy, which is what sends other names over loopback).
 */
import type { IncomingMessage } from 'node:http';
import { ConfigError } from '../errors.js';

export interface OriginPolicy {
  /** Every origin is allowed (`'*'`). */
  readonly any: boolean;
  /** `Origin: null` is allowed (`'null'` listed). */
  readonly opaque: boolean;
  /** Exact origins, normalized (`https://app.example.com`, default ports left out). */
  readonly exact: ReadonlySet<string>;
}

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `scheme://host[:port]` of an http(s) URL as the browser writes it, or undefined when it is none. */
function normalizedOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url.origin;
}

/** The policy for `allowedOrigins` (undefined: the defaults only). Entries must be bare origins. */
export function originPolicy(allowedOrigins: readonly string[] | undefined): OriginPolicy {
  if (allowedOrigins === undefined) return { any: false, opaque: false, exact: new Set() };
  if (!Array.isArray(allowedOrigins)) throw new ConfigError('allowedOrigins', 'must be an array of origins such as "https://app.example.com"');
  let any = false;
  let opaque = false;
  const exact = new Set<string>();
  for (const entry of allowedOrigins) {
    if (entry === '*') any = true;
    else if (entry === 'null') opaque = true;
    else {
      const origin = typeof entry === 'string' ? normalizedOrigin(entry) : undefined;
      // An origin has no path, query or fragment: "https://app.example.com/" is accepted, "/app" is a mistake.
      if (origin === undefined || !/^https?:\/\/[^/?#]+\/?$/i.test(entry)) {
        throw new ConfigError('allowedOrigins', `${JSON.stringify(entry)} is not an origin (scheme://host[:port], e.g. "https://app.example.com"), '*' or 'null'`);
      }
      exact.add(origin);
    }
  }
  return { any, opaque, exact };
}

/** The request's own origin host (`Host`, lowercased, default port left out), or undefined. */
function ownHost(request: IncomingMessage, scheme: 'http:' | 'https:'): string | undefined {
  const host = request.headers.host;
  if (typeof host !== 'string' || host === '') return undefined;
  try {
    return new URL(`${scheme}//${host}`).host;
  } catch {
    return undefined;
  }
}

export type OriginVerdict = { readonly ok: true } | { readonly ok: false; readonly origin: string };

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
  return plain === '::1' || plain.startsWith('127.');
}

/**
 * Whether the page that made this upgrade request may connect (see the module comment).
 * `behindProxy`: the server trusts a proxy (`trustProxy`), which reaches it over loopback with
 * the public `Host`.
 */
export function checkOrigin(request: IncomingMessage, policy: OriginPolicy, behindProxy = false): OriginVerdict {
  const header = request.headers.origin;
  // Not a browser: no page to protect the user from.
  if (header === undefined) return { ok: true };
  if (policy.any) return { ok: true };
  if (header === 'null') return policy.opaque ? { ok: true } : { ok: false, origin: header };
  const origin = normalizedOrigin(header);
  if (origin === undefined) return { ok: false, origin: header };
  if (policy.exact.has(origin)) return { ok: true };
  const url = new URL(origin);
  if (LOOPBACK_HOSTNAMES.has(url.hostname)) return { ok: true };
  if (url.host === ownHost(request, url.protocol as 'http:' | 'https:')) {
    // Reached over loopback under a name that is not loopback: a rebound name, unless a proxy sent it.
    if (!behindProxy && isLoopbackAddress(request.socket?.localAddress)) return { ok: false, origin: header };
    return { ok: true };
  }
  return { ok: false, origin: header };
}
