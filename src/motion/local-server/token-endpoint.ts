/** `POST /v1/console/session-tokens`: exchanges the API key for a session token. */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultPlan } from './faults.js';
import { CONSOLE_PATH, STATUS_TEXT, errorBody, secretEquals } from './http.js';
import type { LocalMotionServerStats } from './types.js';

export interface TokenEndpointContext {
  readonly apiKey: string;
  readonly faults: FaultPlan;
  /** Issued tokens → their expiry in unix seconds. */
  readonly tokens: Map<string, number>;
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
    const token = randomBytes(24).toString('base64url');
    context.tokens.set(token, expireAt);
    context.stats.tokensIssued += 1;
    send(200, JSON.stringify({ sessionToken: token }));
  });
}
