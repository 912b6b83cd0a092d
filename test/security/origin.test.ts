/**
 * Origin checks on WebSocket upgrades: a real VoiceServer on loopback, real ws clients that send
 * (or do not send) an Origin header the way a browser would, and the real CLI server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { checkOrigin, originPolicy } from '../../src/server/origin.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { LineCapture } from './capture.js';

const servers: VoiceServer[] = [];
const sockets: WebSocket[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  for (const server of servers.splice(0)) await server.stop();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

async function start(options: Partial<VoiceServerOptions> = {}): Promise<{ port: number; url: string }> {
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Hi.'] }), tts: new FakeTts() },
    ...options,
  });
  servers.push(server);
  const address = await server.start();
  return { port: address.port, url: address.url };
}

type Outcome = { readonly opened: true } | { readonly opened: false; readonly status: number; readonly body: string };

/** Opens a WebSocket with these headers: opened, or the HTTP status (and body) the upgrade was refused with. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    sockets.push(socket);
    socket.once('open', () => resolve({ opened: true }));
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
    });
    socket.once('error', (error) => reject(error));
  });
}

describe('origin checks on WebSocket upgrades', () => {
  it('a client without an Origin header (not a browser) connects', async () => {
    const { url } = await start();
    expect(await upgrade(url)).toEqual({ opened: true });
  });

  it('a page on another site is refused with 403 before the WebSocket opens, and the refusal is logged with its origin', async () => {
    const capture = new LineCapture();
    const { url } = await start({ logger: createLogger({ level: 'info', destination: capture }) });
    const outcome = await upgrade(url, { Origin: 'https://evil.example' });
    expect(outcome).toEqual({ opened: false, status: 403, body: '{"error":"origin_not_allowed"}' });
    expect(servers[0]?.sessions).toBe(0);
    const line = capture.lines().find((l) => l['msg'] === 'WebSocket upgrade refused: origin not allowed');
    expect(line).toMatchObject({ level: 30, origin: 'https://evil.example', path: '/ws' });
  });

  it("the server's own origin connects when a proxy forwards it; over loopback without one, a non-loopback Host is a rebound name and is refused", async () => {
    // DNS rebinding: evil.example re-pointed at 127.0.0.1, the page's own Host and Origin agree.
    const direct = await start();
    expect(await upgrade(direct.url, { Host: `evil.example:${direct.port}`, Origin: `http://evil.example:${direct.port}` })).toMatchObject({ opened: false, status: 403 });
    // The page the server serves, reached by a loopback name, is same-origin (and loopback).
    expect(await upgrade(direct.url, { Host: `localhost:${direct.port}`, Origin: `http://localhost:${direct.port}` })).toEqual({ opened: true });
    // Behind a proxy on the same machine (trustProxy), the public name comes over loopback: same-origin.
    const proxied = await start({ trustProxy: true });
    expect(await upgrade(proxied.url, { Host: `voice.example.com:${proxied.port}`, Origin: `http://voice.example.com:${proxied.port}` })).toEqual({ opened: true });
    expect(await upgrade(proxied.url, { Host: 'voice.example.com', Origin: 'https://voice.example.com' })).toEqual({ opened: true });
    // Same name, another port: another origin.
    expect(await upgrade(proxied.url, { Host: `voice.example.com:${proxied.port}`, Origin: 'https://voice.example.com:9999' })).toMatchObject({ opened: false, status: 403 });
  });

  it('loopback origins connect on any port; a configured origin connects; others stay refused', async () => {
    const { url } = await start({ allowedOrigins: ['https://app.example.com'] });
    for (const origin of ['http://localhost:5173', 'https://127.0.0.1:3000', 'http://[::1]:8080', 'http://localhost']) {
      expect(await upgrade(url, { Origin: origin }), origin).toEqual({ opened: true });
    }
    expect(await upgrade(url, { Origin: 'https://app.example.com' })).toEqual({ opened: true });
    expect(await upgrade(url, { Origin: 'https://app.example.com.evil.example' })).toMatchObject({ opened: false, status: 403 });
    expect(await upgrade(url, { Origin: 'http://app.example.com' })).toMatchObject({ opened: false, status: 403 });
  });

  it("Origin: null (sandboxed iframes, file:// pages) is refused unless 'null' is listed; '*' allows every page", async () => {
    const strict = await start();
    expect(await upgrade(strict.url, { Origin: 'null' })).toMatchObject({ opened: false, status: 403 });
    const opaque = await start({ allowedOrigins: ['null'] });
    expect(await upgrade(opaque.url, { Origin: 'null' })).toEqual({ opened: true });
    expect(await upgrade(opaque.url, { Origin: 'https://evil.example' })).toMatchObject({ opened: false, status: 403 });
    const open = await start({ allowedOrigins: ['*'] });
    expect(await upgrade(open.url, { Origin: 'https://anything.example' })).toEqual({ opened: true });
  });

  it('the /inspect stream is checked too', async () => {
    const { port } = await start({ inspect: true });
    const inspect = `ws://127.0.0.1:${port}/inspect/ws`;
    expect(await upgrade(inspect, { Origin: 'https://evil.example' })).toMatchObject({ opened: false, status: 403 });
    expect(await upgrade(inspect, { Origin: `http://127.0.0.1:${port}` })).toEqual({ opened: true });
  });

  it('allowedOrigins entries that are not origins are a ConfigError naming the option', () => {
    const providers = { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['x'] }), tts: new FakeTts() };
    for (const bad of ['app.example.com', 'https://app.example.com/path', 'ftp://files.example.com', '']) {
      expect(() => new VoiceServer({ providers, allowedOrigins: [bad] }), bad).toThrow(ConfigError);
    }
    expect(() => new VoiceServer({ providers, allowedOrigins: ['nope'] })).toThrow(/allowedOrigins: "nope" is not an origin/);
    // A trailing slash is how some people write an origin: accepted, and it means the origin.
    expect(originPolicy(['https://App.Example.com/']).exact).toEqual(new Set(['https://app.example.com']));
  });

  it('checkOrigin: default ports, letter case and a malformed header', () => {
    const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
    const policy = originPolicy(['https://app.example.com']);
    expect(checkOrigin(request({ origin: 'https://APP.example.com:443' }), policy)).toEqual({ ok: true });
    expect(checkOrigin(request({ origin: 'not a url' }), policy)).toEqual({ ok: false, origin: 'not a url' });
    // (no socket: not reached over loopback)
    expect(checkOrigin(request({ origin: 'https://voice.example.com', host: 'voice.example.com:443' }), policy)).toEqual({ ok: true });
    expect(checkOrigin(request({ origin: 'https://voice.example.com' }), policy)).toEqual({ ok: false, origin: 'https://voice.example.com' });
  });
});

describe('origin checks in the CLI server', () => {
  it('`voxstate serve` refuses a foreign Origin with 403 and lets an --allowed-origin page in', async () => {
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--port', '0', '--allowed-origin', 'https://app.example.com'], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], VOXSTATE_AVATAR: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const started = Date.now();
    let match: RegExpMatchArray | null = null;
    while ((match = output.match(/listening: (ws:\/\/127\.0\.0\.1:\d+\/ws)/)) === null) {
      if (Date.now() - started > 30_000 || child.exitCode !== null) throw new Error(`the CLI did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const url = match[1] as string;
    expect(output).toMatch(/AUTH off: any client may connect/);
    expect(await upgrade(url, { Origin: 'https://evil.example' })).toMatchObject({ opened: false, status: 403 });
    expect(await upgrade(url, { Origin: 'https://app.example.com' })).toEqual({ opened: true });
    expect(await upgrade(url)).toEqual({ opened: true });
  }, 40_000);
});
