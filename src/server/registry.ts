/**
 * The sessions of one server, with the limits that keep one client from taking them all.
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

/** How many expired session ids are remembered, and for how long (so a late resume hears why). */
const EXPIRED_MEMORY = { entries: 10_000, ms: 3_600_000 };

export class SessionRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #expired = new Map<string, number>();
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

  delete(sessionId: string): void {
    this.#entries.delete(sessionId);
  }

  /** Remembers that `sessionId` ended because nobody resumed it in time. */
  markExpired(sessionId: string, now = Date.now()): void {
    this.#expired.set(sessionId, now);
    for (const [id, at] of this.#expired) {
      if (this.#expired.size <= EXPIRED_MEMORY.entries && now - at < EXPIRED_MEMORY.ms) break;
      this.#expired.delete(id);
    }
  }

  /** True when `sessionId` expired recently (its resume window passed). */
  expired(sessionId: string, now = Date.now()): boolean {
    const at = this.#expired.get(sessionId);
    return at !== undefined && now - at < EXPIRED_MEMORY.ms;
  }

  hosts(): SessionHost[] {
    return [...this.#entries.values()].map((entry) => entry.host);
  }
}
