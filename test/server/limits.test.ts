/**
 * Connection and provider limits over real loopback sockets: binary frame size, the inbound audio
 * rate, idle connections, and server-wide provider concurrency (docs/configuration.md).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { parseExposition, value } from '../observability/prometheus-text.js';
import { delay, RawClient } from './helpers.js';

const servers: VoiceServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function start(options: Partial<VoiceServerOptions> = {}): Promise<{ server: VoiceServer; url: string; http: string }> {
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Sure.'] }), tts: new FakeTts({ msPerWord: 50 }) },
    ...options,
  });
  servers.push(server);
  const address = await server.start();
  return { server, url: address.url, http: `http://127.0.0.1:${address.port}` };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > until) throw new Error('condition not reached');
    await delay(10);
  }
}

describe('binary audio limits', () => {
  it('a frame longer than audioInput.maxFrameMs is dropped with a non-fatal protocol_message_too_large; the session goes on', async () => {
    const { url } = await start({ audioInput: { maxFrameMs: 100 } });
    const c = client(url);
    await c.hello();
    c.sendAudio(new Int16Array(1600)); // exactly 100 ms: fine
    c.sendAudio(new Int16Array(1602)); // one sample over
    const error = await c.next('error');
    expect(error).toMatchObject({ code: 'protocol_message_too_large', fatal: false });
    expect(String(error['message'])).toMatch(/100 ms/);
    c.send({ type: 'ping', t: 1 });
    await c.next('pong');
    expect(c.of('error')).toHaveLength(1);
    expect(c.closeCode).toBeUndefined();
  });

  it('audio faster than real time is throttled with one non-fatal audio_rate_exceeded; real-time audio afterwards is not', async () => {
    const { url } = await start({ audioInput: { inboundRate: { burstMs: 200 } } });
    const c = client(url);
    await c.hello();
    for (let i = 0; i < 50; i++) c.sendAudio(new Int16Array(320)); // 1 s of audio at once
    const error = await c.next('error');
    expect(error).toMatchObject({ code: 'audio_rate_exceeded', fatal: false });
    // A second of real-time audio: taken, no further error.
    for (let i = 0; i < 50; i++) {
      c.sendAudio(new Int16Array(320));
      await delay(20);
    }
    c.send({ type: 'ping', t: 2 });
    await c.next('pong');
    expect(c.of('error')).toHaveLength(1);
    expect(c.closeCode).toBeUndefined();
  });

  it('a client that keeps sending at 3 × real time is refused: fatal audio_rate_exceeded, close 4429, its session ends', async () => {
    const { server, url } = await start({ audioInput: { inboundRate: { burstMs: 100, refuseAfterMs: 400 } } });
    const c = client(url);
    await c.hello();
    expect(server.sessions).toBe(1);
    const sender = (async () => {
      for (let i = 0; i < 150 && c.closeCode === undefined; i++) {
        if (c.socket.readyState === c.socket.OPEN) c.sendAudio(new Int16Array(960)); // 60 ms every 20 ms
        await delay(20);
      }
    })();
    expect(await c.closed()).toBe(4429);
    await sender;
    const errors = c.of('error');
    expect(errors.map((e) => [e['code'], e['fatal']])).toEqual([
      ['audio_rate_exceeded', false],
      ['audio_rate_exceeded', true],
    ]);
    await waitFor(() => server.sessions === 0);
  });

  it('inboundRate: false turns the rate limit off', async () => {
    const { url } = await start({ audioInput: { inboundRate: false } });
    const c = client(url);
    await c.hello();
    for (let i = 0; i < 400; i++) c.sendAudio(new Int16Array(320)); // 8 s at once
    c.send({ type: 'ping', t: 3 });
    await c.next('pong');
    expect(c.of('error')).toHaveLength(0);
  });

  it('bad audioInput options are refused at construction', () => {
    const providers = { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [] }), tts: new FakeTts() };
    expect(() => new VoiceServer({ providers, audioInput: { maxFrameMs: 5 } })).toThrow(/audioInput\.maxFrameMs/);
    expect(() => new VoiceServer({ providers, audioInput: { inboundRate: { maxRate: 0 } } })).toThrow(/audioInput\.inboundRate\.maxRate/);
    expect(() => new VoiceServer({ providers, connectionIdleTimeoutMs: -1 })).toThrow(/connectionIdleTimeoutMs/);
  });
});

describe('connectionIdleTimeoutMs', () => {
  it('a connection that sends nothing is closed with connection_idle (4408)', async () => {
    const { url } = await start({ connectionIdleTimeoutMs: 150 });
    const c = client(url);
    await c.opened();
    expect(await c.closed()).toBe(4408);
    expect(c.of('error')).toMatchObject([{ code: 'connection_idle', fatal: true }]);
  });

  it('pings keep a quiet session open; when they stop, the session is suspended and can be resumed', async () => {
    const { server, url } = await start({ connectionIdleTimeoutMs: 150 });
    const c = client(url);
    const ready = await c.hello();
    for (let t = 0; t < 8; t++) {
      c.send({ type: 'ping', t });
      await delay(60);
    }
    expect(c.closeCode).toBeUndefined(); // 480 ms, never 150 ms without a message
    expect(await c.closed()).toBe(4408);
    expect(server.sessions).toBe(1); // suspended, not ended
    const back = client(url);
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    await back.next('session.resumed');
  });

  it('audio frames count as activity', async () => {
    const { url } = await start({ connectionIdleTimeoutMs: 150 });
    const c = client(url);
    await c.hello();
    for (let i = 0; i < 25; i++) {
      c.sendAudio(new Int16Array(320));
      await delay(20);
    }
    expect(c.closeCode).toBeUndefined();
  });
});

describe('providers.limits', () => {
  it('sessions share the llm limit: a call waits its turn, the wait is in voxstate_provider_queue_seconds, both replies complete', async () => {
    const { url, http } = await start({
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new FakeLlm({ respond: () => ['Sure thing.'], firstTokenMs: 150 }),
        tts: new FakeTts({ msPerWord: 20 }),
        limits: { llm: 1 },
      },
    });
    const a = client(url);
    const b = client(url);
    await Promise.all([a.hello(), b.hello()]);
    a.send({ type: 'user.text', text: 'first' });
    await delay(20);
    b.send({ type: 'user.text', text: 'second' });
    const [doneA, doneB] = await Promise.all([a.next('reply.done'), b.next('reply.done')]);
    expect(doneA['text']).toBe('Sure thing.');
    expect(doneB['text']).toBe('Sure thing.');
    const m = parseExposition(await (await fetch(`${http}/metrics`)).text());
    expect(value(m, 'voxstate_provider_queue_seconds_count', { provider: 'fake-llm', kind: 'llm' })).toBe(2);
    // The second call waited for most of the first one's 150 ms.
    expect(value(m, 'voxstate_provider_queue_seconds_sum', { provider: 'fake-llm', kind: 'llm' })).toBeGreaterThan(0.08);
    expect(value(m, 'voxstate_provider_queue_seconds_count', { provider: 'fake-tts', kind: 'tts' })).toBe(0);
  });

  it('a wait longer than queueTimeoutMs fails the turn with provider_timeout and the session returns to listening', async () => {
    const { url } = await start({
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new FakeLlm({ respond: () => ['Done.'], firstTokenMs: (call) => (call === 1 ? 600 : 0) }),
        tts: new FakeTts({ msPerWord: 20 }),
        limits: { llm: 1, queueTimeoutMs: 100 },
      },
    });
    const a = client(url);
    const b = client(url);
    await Promise.all([a.hello(), b.hello()]);
    a.send({ type: 'user.text', text: 'slow one' });
    await delay(20);
    b.send({ type: 'user.text', text: 'waits' });
    const error = await b.next('error');
    expect(error).toMatchObject({ code: 'provider_timeout', fatal: false });
    await b.next('session.state', (m) => m['state'] === 'listening' && m['previous'] !== undefined);
    expect((await a.next('reply.done'))['text']).toBe('Done.');
    // The slot is free again: b's next turn runs.
    const from = b.messages.length;
    b.send({ type: 'user.text', text: 'again' });
    expect((await b.next('reply.done', (m) => b.messages.indexOf(m) >= from))['text']).toBe('Done.');
  });

  it('a cancelled turn leaves the queue at once: the call after it does not wait for it', async () => {
    const llm = new FakeLlm({ respond: () => ['Okay.'], firstTokenMs: (call) => (call === 1 ? 300 : 0) });
    const { url } = await start({ providers: { stt: new FakeStt({ recognize: () => '' }), llm, tts: new FakeTts({ msPerWord: 20 }), limits: { llm: 1, queueTimeoutMs: 0 } } });
    const a = client(url);
    const b = client(url);
    const c = client(url);
    await Promise.all([a.hello(), b.hello(), c.hello()]);
    a.send({ type: 'user.text', text: 'holds the slot' });
    await delay(20);
    b.send({ type: 'user.text', text: 'will be cancelled' });
    await b.next('session.state', (m) => m['state'] === 'thinking');
    b.send({ type: 'session.interrupt' });
    await b.next('reply.done');
    c.send({ type: 'user.text', text: 'next in line' });
    await Promise.all([a.next('reply.done'), c.next('reply.done')]);
    // b's completion never reached the provider: calls 1 (a) and 2 (c) only.
    expect(llm.requests).toHaveLength(2);
    expect(llm.requests[1]?.at(-1)).toMatchObject({ role: 'user', content: 'next in line' });
  });
});
