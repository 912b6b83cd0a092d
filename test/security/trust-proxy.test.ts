/**
 * trustProxy: which address the per-address session limit counts (and who is "loopback" for
 * /metrics), with real sockets on loopback sending X-Forwarded-For as a reverse proxy would.
 */
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { clientAddress } from '../../src/server/http-access.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import type { Received } from '../server/helpers.js';

let server: VoiceServer | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await server?.stop();
  server = undefined;
});

const providers = () => ({ stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Hi.'] }), tts: new FakeTts() });

async function start(options: Partial<VoiceServerOptions>): Promise<string> {
  server = new VoiceServer({ port: 0, vad: false, providers: providers(), session: { limits: { maxPerIp: 1 } }, ...options });
  return (await server.start()).url;
}

/** Opens a session through a socket that carries `forwarded` as X-Forwarded-For: `session.ready` or the error it got. */
async function session(url: string, forwarded?: string): Promise<Received> {
  const socket = new WebSocket(url, forwarded === undefined ? {} : { headers: { 'X-Forwarded-For': forwarded } });
  sockets.push(socket);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const first = new Promise<Received>((resolve) => {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Received;
      if (message.type === 'session.ready' || message.type === 'error') resolve(message);
    });
  });
  socket.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } }));
  return first;
}

describe('trustProxy and the per-address limit', () => {
  it('without trustProxy, X-Forwarded-For is ignored: every client of one socket address shares its limit', async () => {
    const url = await start({});
    expect((await session(url, '198.51.100.1')).type).toBe('session.ready');
    expect(await session(url, '198.51.100.2')).toMatchObject({ type: 'error', code: 'session_limit', message: 'at most 1 sessions per address' });
  });

  it('trustProxy: true counts the rightmost entry (what the proxy appended); what the client wrote to its left is not believed', async () => {
    const url = await start({ trustProxy: true });
    expect((await session(url, '198.51.100.1')).type).toBe('session.ready');
    expect((await session(url, '198.51.100.2')).type).toBe('session.ready');
    // The same client again, spoofing a fresh address in front of the one the proxy appended.
    expect(await session(url, '10.9.9.9, 198.51.100.1')).toMatchObject({ code: 'session_limit' });
    expect(server?.sessions).toBe(2);
  });

  it('trustProxy: 2 counts the entry the outer of two proxies wrote', async () => {
    const url = await start({ trustProxy: 2 });
    // client → CDN (appends the client) → load balancer (appends the CDN) → voxstate
    expect((await session(url, '203.0.113.5, 192.0.2.10')).type).toBe('session.ready');
    expect((await session(url, '203.0.113.6, 192.0.2.10')).type).toBe('session.ready');
    expect(await session(url, '1.1.1.1, 203.0.113.5, 192.0.2.11')).toMatchObject({ code: 'session_limit' });
  });

  it('behind a proxy on the same machine, /metrics is open only to forwarded loopback callers', async () => {
    const url = await start({ trustProxy: true });
    const http = url.replace('ws://', 'http://').replace('/ws', '/metrics');
    expect((await fetch(http)).status).toBe(200);
    expect((await fetch(http, { headers: { 'x-forwarded-for': '127.0.0.1' } })).status).toBe(200);
    // No `auth` hook: nobody but loopback reads it.
    expect((await fetch(http, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(403);
  });

  it('a bad trustProxy is a ConfigError', () => {
    for (const bad of [-1, 1.5, 99, 'yes' as unknown as number]) {
      expect(() => new VoiceServer({ providers: providers(), trustProxy: bad }), String(bad)).toThrow(ConfigError);
    }
  });
});

describe('clientAddress', () => {
  const request = (remoteAddress: string, forwarded?: string | string[]) =>
    ({ socket: { remoteAddress }, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } }) as unknown as IncomingMessage;

  it('reads ports, brackets, repeated headers, short lists, and falls back to the socket for garbage', () => {
    expect(clientAddress(request('::ffff:127.0.0.1'), 0)).toBe('127.0.0.1');
    expect(clientAddress(request('10.0.0.1', '198.51.100.1:4711'), 1)).toBe('198.51.100.1');
    expect(clientAddress(request('10.0.0.1', '[2001:db8::1]:443'), 1)).toBe('2001:db8::1');
    expect(clientAddress(request('10.0.0.1', ['203.0.113.5', '192.0.2.10']), 2)).toBe('203.0.113.5');
    expect(clientAddress(request('10.0.0.1', '203.0.113.5'), 3)).toBe('203.0.113.5');
    expect(clientAddress(request('10.0.0.1', 'unknown'), 1)).toBe('10.0.0.1');
    expect(clientAddress(request('10.0.0.1', ''), 1)).toBe('10.0.0.1');
    expect(clientAddress(request('10.0.0.1', '198.51.100.1'), 0)).toBe('10.0.0.1');
  });
});
