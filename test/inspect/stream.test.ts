/**
 * The inspector stream (`/inspect/ws`) and page (`GET /inspect`) of a real VoiceServer on loopback,
 * with fake providers: what a client sees of sessions, and what it must never see.
 */
import { networkInterfaces } from 'node:os';
import { createServer, type Server } from 'node:http';
import { createWebSocketInspector } from '@statelyai/inspect';
import WebSocket, { WebSocketServer } from 'ws';
import type { InspectionEvent } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { publicState } from '../../machines/session-types.js';
import type { LogEntry } from '../../src/inspect/protocol.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { Tool } from '../../src/providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { RawClient } from '../server/helpers.js';
import { InspectStream } from './helpers.js';

let server: VoiceServer | undefined;
const closers: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await server?.stop();
  server = undefined;
});

async function start(options: Partial<VoiceServerOptions> = {}): Promise<{ port: number; url: string }> {
  server = new VoiceServer({
    port: 0,
    providers: {
      stt: new FakeStt({ recognize: () => 'hello' }),
      llm: new FakeLlm({ respond: () => ['Hello there, friend.'], firstTokenMs: 20 }),
      tts: new FakeTts({ msPerWord: 40 }),
    },
    vad: false,
    ...options,
  });
  const { port, url } = await server.start();
  return { port, url };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  closers.push(() => c.close());
  return c;
}

function stream(port: number, host = '127.0.0.1', path = '/inspect/ws'): InspectStream {
  const s = new InspectStream(`ws://${host}:${port}${path}`);
  closers.push(() => s.close());
  return s;
}

/** The public states the session actor's state entries went through (after `initial`, its value when the watch began). */
function publicStates(entries: readonly LogEntry[], root: string | null, initial?: unknown): string[] {
  const states: string[] = initial === undefined ? [] : [publicState(initial).state];
  for (const entry of entries) {
    if (entry.kind !== 'state' || entry.actor !== root) continue;
    const state = publicState(entry.value).state;
    if (states.at(-1) !== state) states.push(state);
  }
  return states;
}

describe('the inspector stream', () => {
  it('lists a session that started before the client connected, with its state, stage, age and turns', async () => {
    const { port, url } = await start();
    const c = client(url);
    const ready = await c.hello();
    c.send({ type: 'user.text', text: 'hi' });
    await c.next('reply.done');
    await c.next('session.state', (m) => m['state'] === 'listening' && c.of('reply.done').length > 0);

    const s = stream(port);
    const list = await s.next('inspect.sessions');
    expect(list.protocol).toBe(1);
    expect(list.sessions).toEqual([
      { id: ready['sessionId'], state: 'listening', voice: 'silent', stage: null, createdAt: expect.any(Number), ageMs: expect.any(Number), turns: 1, ended: false },
    ]);
    expect(list.sessions[0]?.ageMs).toBeGreaterThanOrEqual(0);
  });

  it('watching a session: its charts, its actors, then state changes as they happen, provider calls, the transcript and the turn timings', async () => {
    const { port, url } = await start();
    const c = client(url);
    const ready = await c.hello();
    const id = ready['sessionId'] as string;
    const s = stream(port);
    await s.next('inspect.sessions');
    s.send({ type: 'watch', sessionId: id });
    const caughtUp = await s.next('inspect.session');
    expect(caughtUp.session.id).toBe(id);
    const root = caughtUp.root;
    expect(caughtUp.actors.find((a) => a.actor === root)).toMatchObject({ chart: 'session', status: 'active', value: { active: { turn: { listening: 'waiting' } } } });
    const chart = await s.next('inspect.chart', (m) => m.key === 'session');
    expect(chart.chart.nodes.map((n) => n.id)).toContain('session.active.turn.replying.speaking');

    c.send({ type: 'user.text', text: 'what is on today?' });
    await c.next('reply.done');
    await s.until(() => s.entries(id).some((e) => e.kind === 'turn'), 'turn entry');
    const entries = s.entries(id);
    const initial = caughtUp.actors.find((a) => a.actor === root)?.value;
    expect(publicStates(entries, root, initial)).toEqual(['listening', 'thinking', 'speaking', 'listening']);
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'event', actor: root, event: { type: 'user.text', text: 'what is on today?' } }));
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'transition', actor: root, event: 'user.text', source: 'session.active.turn.listening', targets: ['session.active.turn.replying'] }));
    // Provider calls: the reply machine started (with its chart), its LLM and TTS calls started and ended.
    const reply = entries.find((e) => e.kind === 'actor' && e.src === 'reply');
    expect(reply).toMatchObject({ parent: root, chart: 'reply' });
    expect(s.messages.some((m) => m.type === 'inspect.chart' && m.key === 'reply')).toBe(true);
    for (const src of ['llm', 'tts']) {
      const call = entries.find((e): e is Extract<LogEntry, { kind: 'actor' }> => e.kind === 'actor' && e.src === src);
      expect(call, src).toBeDefined();
      expect(entries).toContainEqual(expect.objectContaining({ kind: 'stopped', actor: call?.actor }));
    }
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'emit', actor: root, event: { type: 'reply.done', replyId: 1, text: 'Hello there, friend.', interrupted: false } }));
    const turn = entries.find((e): e is Extract<LogEntry, { kind: 'turn' }> => e.kind === 'turn');
    expect(turn?.metrics).toMatchObject({ turnId: '1', source: 'text', interrupted: false, llmFirstTokenMs: expect.any(Number), ttsFirstAudioMs: expect.any(Number) });
    // Binary audio is summarized, never sent.
    expect(entries.some((e) => e.kind === 'event' && JSON.stringify(e.event).includes('"binary":"Int16Array"'))).toBe(true);

    // A second watcher catches up: the transcript and the timings are there.
    const late = stream(port);
    await late.opened();
    late.send({ type: 'watch', sessionId: id });
    const again = await late.next('inspect.session');
    expect(again.transcript.map((l) => [l.role, l.text])).toEqual([
      ['user', 'what is on today?'],
      ['assistant', 'Hello there, friend.'],
    ]);
    expect(again.turns).toHaveLength(1);
    // The log it catches up with is what was logged while the first client watched.
    expect(publicStates(again.log, again.root)).toEqual(['thinking', 'speaking', 'listening']);
    expect(again.log.filter((e) => e.kind === 'event' && (e.event as { type?: string }).type === 'user.text')).toHaveLength(1);
  });

  it('watching "*" streams every session; an unknown session is an error message, not a closed socket', async () => {
    const { port, url } = await start();
    const a = client(url);
    const b = client(url);
    const ids = [(await a.hello())['sessionId'] as string, (await b.hello())['sessionId'] as string];
    const s = stream(port);
    await s.opened();
    s.send({ type: 'watch', sessionId: 'nope' });
    expect((await s.next('inspect.error')).message).toBe('no session nope');
    s.send({ type: 'watch', sessionId: '*' });
    await s.until(() => ids.every((id) => s.messages.some((m) => m.type === 'inspect.session' && m.session.id === id)), 'catch-up of both');
    a.send({ type: 'user.text', text: 'one' });
    b.send({ type: 'user.text', text: 'two' });
    await Promise.all([a.next('reply.done'), b.next('reply.done')]);
    await s.until(() => ids.every((id) => s.entries(id).some((e) => e.kind === 'turn')), 'a turn of each');
    s.send('not json');
    expect((await s.next('inspect.error', (m) => m.message.startsWith('expected'))).type).toBe('inspect.error');
    expect(s.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('secrets never reach the stream or the forward function: the resume token, secret-named tool arguments', async () => {
    const forwarded: string[] = [];
    const login: Tool = { name: 'login', description: 'Signs in', parameters: { type: 'object' }, execute: async () => ({ ok: true }) };
    let calls = 0;
    const { port, url } = await start({
      tools: [login],
      session: { ttlMs: 10_000 },
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        // The first completion calls the tool with a password, the next one answers.
        llm: new FakeLlm({ respond: () => (calls++ === 0 ? [{ toolCall: { name: 'login', arguments: '{"user":"ann","password":"hunter2-pw"}' } }] : ['Signed in.']) }),
        tts: new FakeTts({ msPerWord: 20 }),
      },
      inspect: {
        forward: (event: InspectionEvent) => {
          const e = event as InspectionEvent & { event?: unknown; snapshot?: unknown; action?: unknown };
          forwarded.push(JSON.stringify([e.type, e.event, e.snapshot, e.action, e.actorRef.getSnapshot()]));
        },
      },
    });
    const s = stream(port);
    await s.opened();
    s.send({ type: 'watch', sessionId: '*' });
    const first = client(url);
    const ready = await first.hello();
    const token = ready['resumeToken'] as string;
    const id = ready['sessionId'] as string;
    first.send({ type: 'user.text', text: 'sign me in' });
    await first.next('reply.done');
    first.socket.terminate();
    await first.closed();
    const back = client(url);
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId: id, resumeToken: token });
    await back.next('session.resumed');
    // A user who types their token.
    back.send({ type: 'user.text', text: `my token is ${token}` });
    await back.next('reply.done');
    await s.until(() => s.entries(id).filter((e) => e.kind === 'turn').length === 2, 'both turns');

    const entries = s.entries(id);
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'event', event: { type: 'session.resume', token: '[redacted]' } }));
    expect(entries).toContainEqual(expect.objectContaining({ kind: 'event', event: { type: 'user.text', text: 'my token is [redacted]' } }));
    expect(JSON.stringify(entries)).toContain('\\"password\\":\\"[redacted]\\"');
    expect(forwarded.some((line) => line.includes('session.resume'))).toBe(true);
    // A client that starts watching now catches up with the transcript, from the session's history.
    const late = stream(port);
    await late.opened();
    late.send({ type: 'watch', sessionId: id });
    expect((await late.next('inspect.session')).transcript.map((l) => l.text)).toContain('my token is [redacted]');
    for (const [where, text] of [
      ['stream', [...s.frames, ...late.frames].join('\n')],
      ['forward', forwarded.join('\n')],
    ] as const) {
      expect(text.includes(token), `${where} holds the resume token`).toBe(false);
      expect(text.includes('hunter2-pw'), `${where} holds the password`).toBe(false);
    }
  });

  it("forward feeds Stately's WebSocket inspector real events: actors, events, snapshots", async () => {
    const received: { type: string; name?: string; event?: { type?: string }; snapshot?: { value?: unknown } }[] = [];
    const receiver = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    closers.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    receiver.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(String(data)) as (typeof received)[number])));
    await new Promise<void>((resolve) => receiver.once('listening', () => resolve()));
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${(receiver.address() as { port: number }).port}` });
    closers.push(() => inspector.stop());
    const { url } = await start({ inspect: { forward: (event) => inspector.inspect.next?.(event) } });
    const c = client(url);
    await c.hello();
    c.send({ type: 'user.text', text: 'hi stately' });
    await c.next('reply.done');
    const deadline = Date.now() + 10_000;
    const seen = (): boolean =>
      received.some((m) => m.type === '@xstate.actor' && m.name === 'session') &&
      received.some((m) => m.type === '@xstate.event' && m.event?.type === 'user.text') &&
      received.some((m) => m.type === '@xstate.snapshot' && JSON.stringify(m.snapshot?.value ?? null).includes('"replying":"speaking"'));
    while (!seen() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen(), received.map((m) => m.type).join(' ')).toBe(true);
  });
});

describe('who may inspect', () => {
  it('is on by default on loopback, and off with inspect: false', async () => {
    const { port } = await start({ inspect: false });
    expect((await fetch(`http://127.0.0.1:${port}/inspect`)).status).toBe(404);
    const refused = await new Promise<number | undefined>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/inspect/ws`);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.once('error', () => resolve(undefined));
    });
    expect(refused).toBe(404);
  });

  it('serves the page to loopback callers: self-contained, small, with a strict content security policy', async () => {
    const { port } = await start();
    const res = await fetch(`http://127.0.0.1:${port}/inspect`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    expect(html.length).toBeLessThan(100_000);
    // Nothing fetched from anywhere (the SVG namespace is a name, not a fetch).
    expect(html.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
  });

  it('from another address: the page and the stream need a token the auth hook accepts (header or ?token=)', async () => {
    const address = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
    expect(address, 'a non-loopback IPv4 address on this machine').toBeDefined();
    const { port } = await start({ host: '0.0.0.0', inspect: true, auth: (token) => (token === 'letmein' ? { principal: 'ops' } : false) });
    const base = `http://${address}:${port}/inspect`;
    expect((await fetch(base)).status).toBe(401);
    expect((await fetch(`${base}?token=guess`)).status).toBe(403);
    expect((await fetch(`${base}?token=letmein`)).status).toBe(200);
    expect((await fetch(base, { headers: { authorization: 'Bearer letmein' } })).status).toBe(200);
    const upgrade = (path: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://${address}:${port}${path}`);
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => {
          ws.close();
          resolve(101);
        });
        ws.once('error', () => resolve(0));
      });
    expect(await upgrade('/inspect/ws')).toBe(401);
    expect(await upgrade('/inspect/ws?token=guess')).toBe(403);
    expect(await upgrade('/inspect/ws?token=letmein')).toBe(101);
    // Still open on loopback.
    expect((await fetch(`http://127.0.0.1:${port}/inspect`)).status).toBe(200);
  });

  it('is off by default on a non-loopback host and when mounted on your own server', async () => {
    const { port } = await start({ host: '0.0.0.0' });
    expect((await fetch(`http://127.0.0.1:${port}/inspect`)).status).toBe(404);
    await server?.stop();
    const http: Server = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    server = new VoiceServer({ server: http, providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['x'] }), tts: new FakeTts({}) }, vad: false });
    await server.start();
    http.on('request', (_req, res) => {
      if (!res.headersSent) res.writeHead(418).end();
    });
    expect((await fetch(`http://127.0.0.1:${(http.address() as { port: number }).port}/inspect`)).status).toBe(418);
  });
});
