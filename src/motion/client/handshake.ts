/**
 * Opening one Motion Server connection, up to the confirm (spec §2–§4.1): the region and endpoints,
 * the token exchange, the WebSocket upgrade with its auth, and configure → confirm. The attempt is
 * settled by exactly one of confirm, server error, close, refusal, abort or timeout. Once confirmed,
 * the socket's frames and its close go to the stream handlers of the MotionClient that asked.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../../observability/logger.js';
import { closeError, MotionError, serverErrorRetryable, upgradeError } from '../errors.js';
import { decodeMessage } from '../protocol/codec.js';
import { SERVER_ERROR_CODES } from '../protocol/types.js';
import { AUTO_REGION, resolveEndpoints, websocketUrl } from './endpoints.js';
import type { MotionClientOptions, MotionConfirm } from './motion-client.js';
import { discoverRegion } from './region.js';
import { fetchSessionToken } from './token.js';

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024;

/** Where to connect and with which token: `region: 'auto'` resolved, then the token exchange. */
export async function prepareConnection(
  options: MotionClientOptions,
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<{ readonly ingressUrl: string; readonly token: string }> {
  const region =
    options.region === AUTO_REGION && (options.consoleEndpointUrl === undefined || options.ingressEndpointUrl === undefined)
      ? await discoverRegion({
          appId: options.appId,
          ...(options.regionBootstrapUrl === undefined ? {} : { bootstrapUrl: options.regionBootstrapUrl }),
          ...(options.regionBootstrapTimeoutMs === undefined ? {} : { timeoutMs: options.regionBootstrapTimeoutMs }),
          ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
          ...(signal === undefined ? {} : { signal }),
          logger: log,
        })
      : options.region;
  const endpoints = resolveEndpoints({ ...options, ...(region === undefined ? {} : { region }) });
  const token = await fetchSessionToken({
    consoleUrl: endpoints.consoleUrl,
    apiKey: options.apiKey,
    ...(options.tokenTtlSeconds === undefined ? {} : { ttlSeconds: options.tokenTtlSeconds }),
    ...(options.handshakeTimeoutMs === undefined ? {} : { timeoutMs: options.handshakeTimeoutMs }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(signal === undefined ? {} : { signal }),
  });
  return { ingressUrl: endpoints.ingressUrl, token };
}

/** What the socket delivers once the connection is confirmed. */
export interface StreamHandlers {
  /** A binary envelope, with performance.now() at the socket read. */
  message(bytes: Uint8Array, receivedAt: number): void;
  /** A text frame: the server broke the protocol. */
  textFrame(error: MotionError): void;
  /** The socket closed, as a typed close error. */
  closed(error: MotionError): void;
}

export interface HandshakeHandlers extends StreamHandlers {
  /** The attempt succeeded. Called synchronously, before any stream frame is handled. */
  confirmed(confirm: MotionConfirm): void;
  /** The attempt failed; the socket is already closed or being closed. */
  failed(error: MotionError): void;
}

export interface HandshakeRequest {
  readonly options: MotionClientOptions;
  readonly ingressUrl: string;
  readonly token: string;
  /** The encoded CLIENT_CONFIGURE_SESSION, sent when the socket opens. */
  readonly configure: Uint8Array;
  readonly signal: AbortSignal | undefined;
  readonly log: Logger;
}

export interface PendingHandshake {
  readonly socket: WebSocket;
  /** Ends the attempt with `error` (no effect once it is settled). */
  abort(error: MotionError): void;
}

function rawBytes(data: RawData): Uint8Array {
  const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** The confirm, or the error, a handshake-time envelope amounts to. */
function handshakeOutcome(bytes: Uint8Array): { readonly confirm: MotionConfirm } | { readonly error: MotionError } {
  let message;
  try {
    message = decodeMessage(bytes);
  } catch (error) {
    return { error: new MotionError('malformed envelope during the handshake', { phase: 'handshake', reason: 'protocol', retryable: false, cause: error }) };
  }
  if (message.type === 'server.confirmSession') {
    if (message.connectionId === '') {
      return { error: new MotionError('SERVER_CONFIRM_SESSION with an empty connection_id', { phase: 'handshake', reason: 'protocol', retryable: false }) };
    }
    return { confirm: { connectionId: message.connectionId } };
  }
  if (message.type === 'server.error') {
    const auth = message.code === SERVER_ERROR_CODES.unauthenticated;
    return {
      error: new MotionError(`Motion Server rejected the session (code ${message.code}): ${message.message}`, {
        phase: 'handshake',
        reason: auth ? 'auth_failed' : 'handshake_rejected',
        serverCode: message.code,
        retryable: serverErrorRetryable(message.code),
      }),
    };
  }
  return { error: new MotionError(`unexpected ${message.type} before SERVER_CONFIRM_SESSION`, { phase: 'handshake', reason: 'protocol', retryable: false }) };
}

/** Opens the socket (header or query auth), sends configure and settles on the first outcome. */
export function startHandshake(request: HandshakeRequest, handlers: HandshakeHandlers): PendingHandshake {
  const { options, token, signal, log } = request;
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const url = websocketUrl(request.ingressUrl, options.avatarId);
  const headers: Record<string, string> = {};
  if (options.useQueryAuth === true) {
    url.searchParams.set('appId', options.appId);
    url.searchParams.set('sessionKey', token);
  } else {
    headers['X-App-ID'] = options.appId;
    headers['X-Session-Key'] = token;
  }
  log.debug({ host: url.host, path: url.pathname, queryAuth: options.useQueryAuth === true }, 'connecting to Motion Server');

  let settled = false;
  const socket = new WebSocket(url, {
    headers,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    handshakeTimeout: timeoutMs,
  });
  const finish = (outcome: { readonly confirm: MotionConfirm } | { readonly error: MotionError }): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if ('confirm' in outcome) {
      log.debug({ connectionId: outcome.confirm.connectionId }, 'Motion Server session confirmed');
      handlers.confirmed(outcome.confirm);
      return;
    }
    socket.removeAllListeners('message');
    if (socket.readyState === WebSocket.OPEN) socket.close(1000);
    else socket.terminate();
    handlers.failed(outcome.error);
  };
  const timer = setTimeout(() => {
    finish({
      error: new MotionError(`Motion Server handshake timed out after ${timeoutMs} ms`, { phase: 'handshake', reason: 'handshake_timeout', retryable: true }),
    });
  }, timeoutMs);
  const onAbort = (): void => {
    finish({ error: new MotionError('connect aborted', { phase: 'connect', reason: 'not_connected', retryable: false }) });
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  socket.on('unexpected-response', (clientRequest: ClientRequest, response: IncomingMessage) => {
    const status = response.statusCode ?? 0;
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    const done = (): void => {
      finish({ error: upgradeError(status, body) });
      clientRequest.destroy();
    };
    response.once('end', done);
    response.once('error', done);
  });
  socket.on('error', (error: Error) => {
    if (!settled) {
      finish({ error: new MotionError(`cannot reach the Motion Server: ${error.message}`, { phase: 'connect', reason: 'network', retryable: true, cause: error }) });
      return;
    }
    log.debug({ err: error }, 'motion socket error');
  });
  socket.on('open', () => socket.send(request.configure));
  socket.on('close', (code: number, reasonBuffer: Buffer) => {
    const reason = reasonBuffer.toString('utf8');
    if (!settled) {
      finish({ error: closeError(code, reason, 'handshake') });
      return;
    }
    handlers.closed(closeError(code, reason, 'stream'));
  });
  socket.on('message', (data: RawData, isBinary: boolean) => {
    const receivedAt = performance.now();
    if (!isBinary) {
      const error = new MotionError('Motion Server sent a text frame; every frame must be a binary envelope', {
        phase: settled ? 'stream' : 'handshake',
        reason: 'protocol',
        retryable: false,
      });
      if (!settled) finish({ error });
      else handlers.textFrame(error);
      return;
    }
    const bytes = rawBytes(data);
    if (!settled) {
      finish(handshakeOutcome(bytes));
      return;
    }
    handlers.message(bytes, receivedAt);
  });

  return { socket, abort: (error) => finish({ error }) };
}
