/**
 * `region: 'auto'` against a loopback bootstrap endpoint (never the real one): the answer is used,
 * cached per app id and bootstrap URL, and any failure falls back to us-west with a warning.
 * The hosted console is the one remote piece: the client's fetch records where the token request
 * would go and answers it at the wire, while the bootstrap requests go over real loopback HTTP.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { MotionClient } from '../../src/motion/client/index.js';
import { discoverRegion } from '../../src/motion/client/region.js';
import { createLogger } from '../../src/observability/logger.js';
import { API_KEY, sleep } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface Bootstrap {
  readonly url: string;
  readonly bodies: unknown[];
}

/** A loopback bootstrap endpoint that records each request body and answers with `answer`. */
async function bootstrap(answer: (request: IncomingMessage, response: ServerResponse) => void): Promise<Bootstrap> {
  const bodies: unknown[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      bodies.push(JSON.parse(text));
      answer(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bootstrap`, bodies };
}

function json(body: unknown): (request: IncomingMessage, response: ServerResponse) => void {
  return (_request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

function logSink(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return {
    logger: createLogger({ level: 'debug', destination: sink }),
    lines: () =>
      text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/**
 * A fetch that sends loopback requests (the bootstrap) for real, and records the hosted console
 * URL the token request is for, refusing it there as a console would refuse a wrong key.
 */
function consoleAtTheWire(): { fetch: typeof fetch; consoleUrls: string[] } {
  const consoleUrls: string[] = [];
  return {
    consoleUrls,
    fetch: (input, init) => {
      const url = input instanceof URL ? input.href : typeof input === 'string' ? input : input.url;
      if (url.startsWith('http://127.0.0.1:')) return fetch(input, init);
      consoleUrls.push(url);
      return Promise.resolve(new Response(JSON.stringify({ errors: [{ code: 'invalid_api_key' }] }), { status: 401 }));
    },
  };
}

describe("region 'auto'", () => {
  it('asks the bootstrap endpoint with the SDK body and uses region.current for both endpoints', async () => {
    const boot = await bootstrap(json({ region: { current: 'ap-northeast', candidates: ['us-west'] } }));
    const wire = consoleAtTheWire();
    const client = new MotionClient({ apiKey: API_KEY, appId: 'app-auto-1', avatarId: 'a', region: 'auto', regionBootstrapUrl: boot.url, fetch: wire.fetch });
    cleanups.push(() => client.close());
    const error = await client.connect().catch((e: unknown) => e);
    expect(error).toMatchObject({ phase: 'token', status: 401 });
    expect(wire.consoleUrls).toEqual(['https://console.ap-northeast.spatius.ai/v1/console/session-tokens']);
    expect(boot.bodies).toEqual([{ app_id: 'app-auto-1', sdk_version: expect.stringMatching(/^\d+\.\d+\.\d+/), region: 'auto', platform: 'node' }]);
  });

  it('caches the answer per app id and bootstrap URL: a second session makes no request, another app does', async () => {
    const boot = await bootstrap(json({ region: { current: 'cn-shanghai' } }));
    const wire = consoleAtTheWire();
    for (const appId of ['app-cache', 'app-cache', 'app-cache-other']) {
      const client = new MotionClient({ apiKey: API_KEY, appId, avatarId: 'a', region: 'auto', regionBootstrapUrl: boot.url, fetch: wire.fetch });
      await client.connect().catch(() => undefined);
    }
    expect(boot.bodies.map((b) => (b as { app_id: string }).app_id)).toEqual(['app-cache', 'app-cache-other']);
    expect(wire.consoleUrls).toEqual(Array(3).fill('https://console.cn-shanghai.spatialwalk.top/v1/console/session-tokens'));
    // Sessions that start together share one request.
    const boot2 = await bootstrap(json({ region: { current: 'ap-northeast' } }));
    const regions = await Promise.all(Array.from({ length: 5 }, () => discoverRegion({ appId: 'app-together', bootstrapUrl: boot2.url })));
    expect(regions).toEqual(Array(5).fill('ap-northeast'));
    expect(boot2.bodies).toHaveLength(1);
  });

  it('a bootstrap that does not answer in time falls back to us-west, logged at warn', async () => {
    const boot = await bootstrap(() => undefined); // never answers
    const log = logSink();
    const wire = consoleAtTheWire();
    const client = new MotionClient({
      apiKey: API_KEY,
      appId: 'app-timeout',
      avatarId: 'a',
      region: 'auto',
      regionBootstrapUrl: boot.url,
      regionBootstrapTimeoutMs: 200,
      fetch: wire.fetch,
      logger: log.logger,
    });
    await client.connect().catch(() => undefined);
    expect(wire.consoleUrls).toEqual(['https://console.us-west.spatius.ai/v1/console/session-tokens']);
    await sleep(20);
    const warning = log.lines().find((line) => line['level'] === 40);
    expect(warning).toMatchObject({ msg: expect.stringContaining('timed out'), fallback: 'us-west', bootstrapUrl: boot.url });
    expect(JSON.stringify(log.lines())).not.toContain(API_KEY);
  });

  it.each([
    ['not JSON', '<html>oops</html>'],
    ['no region.current', { region: {} }],
    ['a region that is not a name', { region: { current: 'US West; drop' } }],
  ])('an answer with %s falls back to us-west (warned) and is not cached', async (_what, body) => {
    const boot = await bootstrap(json(body));
    const log = logSink();
    expect(await discoverRegion({ appId: 'app-bad', bootstrapUrl: boot.url, logger: log.logger })).toBe('us-west');
    expect(await discoverRegion({ appId: 'app-bad', bootstrapUrl: boot.url, logger: log.logger })).toBe('us-west');
    expect(boot.bodies).toHaveLength(2);
    await sleep(20);
    expect(log.lines().filter((line) => line['level'] === 40)).toHaveLength(2);
  });

  it('a non-200 answer falls back to us-west', async () => {
    const boot = await bootstrap((_request, response) => response.writeHead(503).end('{"region":{"current":"ap-northeast"}}'));
    expect(await discoverRegion({ appId: 'app-503', bootstrapUrl: boot.url })).toBe('us-west');
  });

  it('an explicit region, or both endpoints overridden, asks no bootstrap at all', async () => {
    const boot = await bootstrap(json({ region: { current: 'ap-northeast' } }));
    const wire = consoleAtTheWire();
    const explicit = new MotionClient({ apiKey: API_KEY, appId: 'app-x', avatarId: 'a', region: 'ap-northeast', regionBootstrapUrl: boot.url, fetch: wire.fetch });
    await explicit.connect().catch(() => undefined);
    const overridden = new MotionClient({
      apiKey: API_KEY,
      appId: 'app-y',
      avatarId: 'a',
      region: 'auto',
      regionBootstrapUrl: boot.url,
      consoleEndpointUrl: 'https://console.example.test/v1/console',
      ingressEndpointUrl: 'wss://api.example.test/v2/driveningress',
      fetch: wire.fetch,
    });
    await overridden.connect().catch(() => undefined);
    expect(boot.bodies).toEqual([]);
    expect(wire.consoleUrls).toEqual(['https://console.ap-northeast.spatius.ai/v1/console/session-tokens', 'https://console.example.test/v1/console/session-tokens']);
  });
});
