/** `POST /v1/console/session-tokens`: exchanges the API key for a session token. */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultPlan } from './faults.js';
import { CONSOLE_PATH, STATUS_TEXT, errorBody, secretEquals } from './http.js';
import type { LocalMotionServerStats } from './types.js';

/** Default cap on live session tokens (`maxTokens`). */
export const DEFAULT_MAX_TOKENS = 100_000;
/** Expired tokens are swept at most this often, so issuing stays O(1) amortized. */
const SWEEP_INTERVAL_MS = 1000;

/**
 * The issued tokens and their expiry (unix seconds). Expired tokens are swept as new ones are
 * issued, and at most `maxTokens` are kept: past that the oldest is forgotten (a client holding it
 * gets 400 token invalid and fetches a fresh one), so a client that fetches tokens in a loop cannot
 * grow the map without bound.
 */
export class TokenStore {
  readonly #tokens = new Map<string, number>();
  readonly #maxTokens: number;
  /** The earliest expiry among the stored tokens, or Infinity. */
  #nextExpiry = Number.POSITIVE_INFINITY;
  #lastSweep = 0;

  constructor(maxTokens = DEFAULT_MAX_TOKENS) {
    this.#maxTokens = Math.max(1, maxTokens);
  }

  get size(): number {
    return this.#tokens.size;
  }

  /** Stores a fresh token valid until `expireAt` (unix seconds). */
  issue(expireAt: number): string {
    this.#sweep();
    const token = randomBytes(24).toString('base64url');
    this.#tokens.set(token, expireAt);
    this.#nextExpiry = Math.min(this.#nextExpiry, expireAt);
    while (this.#tokens.size > this.#maxTokens) {
      const oldest = this.#tokens.keys().next().value;
      if (oldest === undefined) break;
      this.#tokens.delete(oldest);
    }
    return token;
  }

  /** The token's expiry, or undefined when it was never issued (or was forgotten). */
  expiryOf(token: string): number | undefined {
    return this.#tokens.get(token);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }

  clear(): void {
    this.#tokens.clear();
    this.#nextExpiry = Number.POSITIVE_INFINITY;
  }

  #sweep(): void {
    const now = Date.now();
    if (now / 1000 < this.#nextExpiry || now - this.#lastSweep < SWEEP_INTERVAL_MS) return;
    this.#lastSweep = now;
    let next = Number.POSITIVE_INFINITY;
    for (const [token, expireAt] of this.#tokens) {
      if (expireAt <= now / 1000) this.#tokens.delete(token);
      else next = Math.min(next, expireAt);
    }
    this.#nextExpiry = next;
  }
}

export interface TokenEndpointContext {
  readonly apiKey: string;
  readonly faults: FaultPlan;
  readonly tokens: TokenStore;
  readonly stats: LocalMotionServerStats;
}

export function handleTokenRequest(request: IncomingMessage, response: ServerResponse, context: TokenEndpointContext): void {
  const url = new URL(request.url ?? '/', 'http://local');
  const send = (status: number, body: string): void => {
    response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    response.end(body);
  };
  if (url.pathname !== `${CONSOLE_PATH}/session-tokens`) {
    send(404, errorBody(404, 'not_found', 'Not Found', `no route ${url.pathname}`));
    return;
  }
  if (request.method !== 'POST') {
    send(405, errorBody(405, 'method_not_allowed', 'Method Not Allowed', 'use POST'));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  request.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= 64 * 1024) chunks.push(chunk);
  });
  request.on('end', () => {
    const forced = context.faults.current.tokenStatus;
    if (forced !== undefined) {
      send(forced, errorBody(forced, 'fault_injected', STATUS_TEXT[forced] ?? 'Error', 'fault injection'));
      return;
    }
    const key = request.headers['x-api-key'];
    if (typeof key !== 'string' || !secretEquals(key, context.apiKey)) {
      send(401, errorBody(401, 'invalid_api_key', 'Unauthorized', 'the API key is not valid'));
      return;
    }
    let expireAt: unknown;
    try {
      expireAt = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { expireAt?: unknown }).expireAt;
    } catch {
      send(400, errorBody(400, 'invalid_body', 'Bad Request', 'body must be JSON {"expireAt": <unix seconds>}'));
      return;
    }
    const now = Date.now() / 1000;
    if (typeof expireAt !== 'number' || !Number.isFinite(expireAt) || expireAt <= now || expireAt > now + 24 * 3600 + 5) {
      send(400, errorBody(400, 'invalid_expire_at', 'Bad Request', 'expireAt must be in (now, now + 24 h]'));
      return;
    }
    const token = context.tokens.issue(expireAt);
    context.stats.tokensIssued += 1;
    send(200, JSON.stringify({ sessionToken: token }));
  });
}
