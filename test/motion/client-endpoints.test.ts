/**
 * The endpoint URLs as users write them (issue 15): a query string on the ingress URL, trailing
 * slashes on the console URL, an http(s) ingress URL; refused upgrades reported by their status;
 * req_ids in the SDK's own form. Every URL form is tried against real loopback servers.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { MotionClient, REQ_ID_PATTERN, fetchSessionToken, newReqId, resolveEndpoints } from '../../src/motion/client/index.js';
import { MotionError, upgradeError } from '../../src/motion/errors.js';
import { API_KEY, speech, startServer, until, type Harness } from './helpers.js';

let harness: Harness | undefined;
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await harness?.server.stop();
  harness = undefined;
});

async function setup(): Promise<Harness> {
  harness = await startServer();
  return harness;
}

function track(client: MotionClient): MotionClient {
  cleanups.push(() => client.close());
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<MotionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MotionError);
  return error as MotionError;
}

/** A loopback HTTP server that records every request URL (plain and upgrade) and answers each with `answer`. */
async function recorder(answer: (url: string, socket: Duplex) => void): Promise<{ port: number; urls: string[] }> {
  const urls: string[] = [];
  const server: Server = createServer((request, response) => {
    urls.push(request.url ?? '');
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    urls.push(request.url ?? '');
    answer(request.url ?? '', socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, urls };
}

function refuse(socket: Duplex, status: number, body: string): void {
  socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

const okToken: typeof fetch = () => Promise.resolve(new Response(JSON.stringify({ sessionToken: 'tok' }), { status: 200 }));

describe('ingress URL with a query string', () => {
  it('keeps the query and puts /websocket on the path, not inside the query', async () => {
    const { port, urls } = await recorder((_url, socket) => refuse(socket, 403, 'no'));
    const client = track(
      new MotionClient({
        apiKey: API_KEY,
        appId: 'app',
        avatarId: 'avatar-1',
        consoleEndpointUrl: `http://127.0.0.1:${port}/v1/console`,
        ingressEndpointUrl: `ws://127.0.0.1:${port}/v2/driveningress/?keep=1`,
        fetch: okToken,
        handshakeTimeoutMs: 2000,
      }),
    );
    await rejection(client.connect());
    expect(urls).toHaveLength(1);
    const seen = new URL(urls[0] ?? '', 'http://x');
    expect(seen.pathname).toBe('/v2/driveningress/websocket');
    expect(seen.searchParams.get('keep')).toBe('1');
    expect(seen.searchParams.get('id')).toBe('avatar-1');
  });

  it('connects to the local Motion Server with the query kept (query auth included)', async () => {
    const h = await setup();
    for (const useQueryAuth of [false, true]) {
      const client = track(new MotionClient(h.clientOptions({ ingressEndpointUrl: `${h.info.ingressEndpointUrl}?keep=1&x=a%2Fb`, useQueryAuth })));
      await expect(client.connect()).resolves.toMatchObject({ connectionId: expect.stringMatching(/^conn_/) });
    }
  });

  it('a refused upgrade is reported by its HTTP status: a 404 or 400 that names no token, app or avatar is upgrade_refused, not token_invalid', async () => {
    const { port } = await recorder((url, socket) => {
      if (url.includes('status=404')) refuse(socket, 404, '<html>Not Found</html>');
      else refuse(socket, 400, '<html>Bad Request</html>');
    });
    for (const status of [404, 400]) {
      const error = await rejection(
        track(
          new MotionClient({
            apiKey: API_KEY,
            appId: 'app',
            avatarId: 'avatar-1',
            consoleEndpointUrl: `http://127.0.0.1:${port}/v1/console`,
            ingressEndpointUrl: `ws://127.0.0.1:${port}/v2/driveningress?status=${status}`,
            fetch: okToken,
          }),
        ).connect(),
      );
      expect(error).toMatchObject({ phase: 'connect', status, reason: 'upgrade_refused', retryable: false, code: 'provider_failed' });
      expect(error.message).toContain(`HTTP ${status}`);
    }
  });

  it('upgradeError keeps the documented reasons when the body names them', () => {
    expect(upgradeError(400, '{"errors":[{"code":"token_invalid","detail":"session token invalid"}]}')).toMatchObject({ reason: 'token_invalid' });
    expect(upgradeError(404, '{"errors":[{"code":"avatar_not_found"}]}')).toMatchObject({ reason: 'avatar_not_found' });
    expect(upgradeError(404, '{"errors":[{"code":"app_not_found","detail":"app unrecognized"}]}')).toMatchObject({ reason: 'app_unrecognized' });
    expect(upgradeError(503, '')).toMatchObject({ reason: 'upgrade_refused', status: 503, retryable: true });
  });
});

describe('console URL with trailing slashes', () => {
  it.each(['/v1/console/', '/v1/console//'])('%s posts to /v1/console/session-tokens and connects', async (path) => {
    const h = await setup();
    const consoleEndpointUrl = `${h.info.url}${path}`;
    expect(resolveEndpoints({ consoleEndpointUrl, ingressEndpointUrl: h.info.ingressEndpointUrl }).consoleUrl).toBe(h.info.consoleEndpointUrl);
    await expect(fetchSessionToken({ consoleUrl: consoleEndpointUrl, apiKey: API_KEY })).resolves.toEqual(expect.any(String));
    const client = track(new MotionClient(h.clientOptions({ consoleEndpointUrl })));
    await expect(client.connect()).resolves.toMatchObject({ connectionId: expect.stringMatching(/^conn_/) });
  });
});

describe('http(s) ingress URL', () => {
  it('http:// is taken as ws:// and streams a reply from the local Motion Server', async () => {
    const h = await setup();
    const httpIngress = h.info.ingressEndpointUrl.replace(/^ws:/, 'http:');
    expect(resolveEndpoints({ consoleEndpointUrl: h.info.consoleEndpointUrl, ingressEndpointUrl: httpIngress }).ingressUrl).toBe(h.info.ingressEndpointUrl);
    const client = track(new MotionClient(h.clientOptions({ ingressEndpointUrl: httpIngress })));
    await client.connect();
    let ended = false;
    client.on('animation', (a) => (ended ||= a.end));
    client.sendAudio(speech(0.2), true);
    await until(() => ended, 3000, 'end');
  });

  it('https:// becomes wss://; other schemes are still refused with a ConfigError', () => {
    expect(resolveEndpoints({ ingressEndpointUrl: 'https://api.example.test/v2/driveningress/' }).ingressUrl).toBe('wss://api.example.test/v2/driveningress');
    expect(() => resolveEndpoints({ ingressEndpointUrl: 'ftp://api.example.test/v2/driveningress' })).toThrow(ConfigError);
    expect(() => resolveEndpoints({ consoleEndpointUrl: 'ws://api.example.test/v1/console' })).toThrow(ConfigError);
  });
});

describe('req_ids', () => {
  it("REQ_ID_PATTERN accepts the SDK's own ids, whose base64url suffix may hold - and _", () => {
    for (const id of ['20261202093015_a-b_c-d_e-f_', '20261202093015_------------', '20261202093015_AbCdEf012345']) expect(id).toMatch(REQ_ID_PATTERN);
    for (const id of ['20261202093015_short', '2026120209301_abcdefghijkl', '20261202093015_abcdefghijk!']) expect(id).not.toMatch(REQ_ID_PATTERN);
  });

  it('newReqId draws its suffix uniformly: every letter and digit about equally often', () => {
    const counts = new Map<string, number>();
    const ids = 6000;
    for (let i = 0; i < ids; i += 1) {
      const id = newReqId();
      if (!REQ_ID_PATTERN.test(id)) throw new Error(`not a req_id: ${id}`);
      for (const char of id.slice(15)) counts.set(char, (counts.get(char) ?? 0) + 1);
    }
    // 72 000 draws over 62 symbols: about 1161 each, with a standard deviation of about 34.
    // The old `byte % 62` made the first 8 symbols (a–h) 5/4 as likely (≈ 1400 each): far outside this band.
    expect(counts.size).toBe(62);
    const expected = (ids * 12) / 62;
    for (const [char, count] of counts) expect(Math.abs(count - expected), `symbol ${char}`).toBeLessThan(expected * 0.15);
  });
});
