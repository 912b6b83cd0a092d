/**
 * The sessions of one server, with the limits that keep one client from taking them all. Which
 * sessions ended (and why) is the session store's business: its tombstones are what every server
 * sharing it answers a late resume from.
 */
import type { ErrorCode } from '../errors.js';
import type { SessionHost } from './session-host.js';

export interface SessionLimits {
  /** Live sessions per server (connected or waiting for a resume). Default 1000. */
  readonly maxSessions: number;
  /** Live sessions per remote IP address. Default 100. */
  readonly maxPerIp: number;
  /** Live sessions per authenticated principal (what `auth` returned). Default 20. */
  readonly maxPerPrincipal: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxSessions: 1000, maxPerIp: 100, maxPerPrincipal: 20 };

interface Entry {
  readonly host: SessionHost;
  readonly ip: string;
  readonly principal: string | undefined;
}

export class SessionRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #limits: SessionLimits;

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Why a new session for this client would break a limit, or undefined when it may be created. */
  refusal(ip: string, principal: string | undefined): { code: ErrorCode; message: string } | undefined {
    if (this.#entries.size >= this.#limits.maxSessions) {
      return { code: 'session_limit', message: `the server holds its maximum of ${this.#limits.maxSessions} sessions` };
    }
    let byIp = 0;
    let byPrincipal = 0;
    for (const entry of this.#entries.values()) {
      if (entry.ip === ip) byIp++;
      if (principal !== undefined && entry.principal === principal) byPrincipal++;
    }
    if (byIp >= this.#limits.maxPerIp) return { code: 'session_limit', message: `at most ${this.#limits.maxPerIp} sessions per address` };
    if (byPrincipal >= this.#limits.maxPerPrincipal) {
      return { code: 'session_limit', message: `at most ${this.#limits.maxPerPrincipal} sessions per account` };
    }
    return undefined;
  }

  add(host: SessionHost, ip: string, principal: string | undefined): void {
    this.#entries.set(host.id, { host, ip, principal });
  }

  get(sessionId: string): SessionHost | undefined {
    return this.#entries.get(sessionId)?.host;
  }

  /** What `auth` returned for the client that opened (or resumed) the session. */
  principalOf(sessionId: string): string | undefined {
    return this.#entries.get(sessionId)?.principal;
  }

  /** Removes the session; with `host`, only when that host is the one registered (a replacement keeps its entry). */
  delete(sessionId: string, host?: SessionHost): void {
    if (host !== undefined && this.#entries.get(sessionId)?.host !== host) return;
    this.#entries.delete(sessionId);
  }

  hosts(): SessionHost[] {
    return [...this.#entries.values()].map((entry) => entry.host);
  }
}
