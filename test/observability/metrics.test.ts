/**
 * GET /metrics over real loopback sockets: a VoiceServer with fake providers, scraped over HTTP and
 * parsed (./prometheus-text.ts). The series list is the contract of docs/observability.md.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { fixture, RawClient, streamRealtime } from '../server/helpers.js';
import { type Exposition, find, parseExposition, value } from './prometheus-text.js';

const servers: VoiceServer[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** The series of docs/observability.md's table, with their type column. */
function documentedSeries(): Map<string, string> {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/observability.md', import.meta.url)), 'utf8');
  const series = new Map<string, string>();
  for (const match of doc.matchAll(/^\| `(voxstate_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)) series.set(match[1] as string, match[2] as string);
  return series;
}

const SERIES: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  voxstate_sessions_active: 'gauge',
  voxstate_sessions_total: 'counter',
  voxstate_turns_total: 'counter',
  voxstate_interruptions_total: 'counter',
  voxstate_turn_latency_seconds: 'histogram',
  voxstate_provider_latency_seconds: 'histogram',
  voxstate_provider_errors_total: 'counter',
  voxstate_provider_queue_seconds: 'histogram',
  voxstate_vad_inference_seconds: 'histogram',
  voxstate_vad_batch_size: 'histogram',
  voxstate_event_loop_delay_seconds: 'gauge',
  voxstate_webrtc_inbound_total: 'counter',
};
const PROVIDERS = { stt: 'fake-stt', llm: 'fake-llm', tts: 'fake-tts' } as const;
const ERROR_CODES = ['provider_failed', 'provider_timeout', 'provider_rate_limited', 'provider_auth', 'provider_bad_response', 'provider_unavailable'];

interface Setup {
  server: VoiceServer;
  url: string;
  http: string;
}

async function start(options: Partial<VoiceServerOptions> & { reply?: string; heard?: string; llm?: FakeLlm } = {}): Promise<Setup> {
  const { reply, heard, llm, ...rest } = options;
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: {
      stt: new FakeStt({ recognize: () => heard ?? 'hello there' }),
      llm: llm ?? new FakeLlm({ respond: () => [reply ?? 'Hi. How can I help?'] }),
      tts: new FakeTts({ msPerWord: 100 }),
    },
    ...rest,
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

async function scrape(http: string): Promise<Exposition> {
  const response = await fetch(`${http}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** A session that ends: the client asks to close it and the server closes the socket. */
async function closeSession(c: RawClient): Promise<void> {
  c.send({ type: 'session.close' });
  await c.closed();
}

describe('GET /metrics', () => {
  it('at start-up lists every documented series (labelled ones at 0 for each known label) and the process metrics', async () => {
    const documented = documentedSeries();
    expect(Object.fromEntries(documented)).toEqual(SERIES);
    const { http } = await start();
    const response = await fetch(`${http}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parseExposition(await response.text());
    for (const [name, type] of Object.entries(SERIES)) expect(m.types.get(name), name).toBe(type);
    // Exactly the documented voxstate series, none other.
    expect([...m.types.keys()].filter((name) => name.startsWith('voxstate_')).sort()).toEqual(Object.keys(SERIES).sort());

    expect(value(m, 'voxstate_sessions_active')).toBe(0);
    expect(value(m, 'voxstate_sessions_total')).toBe(0);
    for (const source of ['voice', 'text', 'idle', 'stage']) expect(value(m, 'voxstate_turns_total', { source })).toBe(0);
    for (const kind of ['confirmed', 'false']) expect(value(m, 'voxstate_interruptions_total', { kind })).toBe(0);
    expect(value(m, 'voxstate_turn_latency_seconds_count')).toBe(0);
    for (const [kind, provider] of Object.entries(PROVIDERS)) {
      expect(value(m, 'voxstate_provider_latency_seconds_count', { provider, kind })).toBe(0);
      expect(find(m, 'voxstate_provider_latency_seconds_bucket', { provider, kind }).length).toBeGreaterThan(5);
      for (const code of ERROR_CODES) expect(value(m, 'voxstate_provider_errors_total', { provider, code })).toBe(0);
    }
    expect(value(m, 'voxstate_vad_inference_seconds_count')).toBe(0);
    expect(value(m, 'voxstate_vad_batch_size_count')).toBe(0);
    for (const event of ['lost', 'late', 'reordered', 'concealed']) expect(value(m, 'voxstate_webrtc_inbound_total', { event })).toBe(0);
    const delays = ['0.5', '0.9', '0.99', '1'].map((quantile) => value(m, 'voxstate_event_loop_delay_seconds', { quantile }));
    for (const delay of delays) expect(delay).toBeGreaterThanOrEqual(0);
    expect(delays[0]).toBeLessThanOrEqual(delays[3] as number);

    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(find(m, name).length, name).toBe(1);
    }
  });

  it('a voice turn and a typed turn count sessions, turns by source, the turn latency, provider latencies and VAD batches', async () => {
    const { url, http } = await start({ vad: {}, heard: 'hello there how are you today' });
    const c = client(url);
    await c.hello({ transport: 'websocket', sampleRate: 16000 });
    const during = await scrape(http);
    expect(value(during, 'voxstate_sessions_active')).toBe(1);
    expect(value(during, 'voxstate_sessions_total')).toBe(1);

    const { pcm, sampleRate } = fixture('hello.16k.wav');
    const silenceMs = 900;
    await streamRealtime((frame) => c.sendAudio(frame), pcm, sampleRate, silenceMs);
    await c.next('metrics.turn', (m) => m['turnId'] === '1');
    c.send({ type: 'user.text', text: 'and the weather?' });
    await c.next('metrics.turn', (m) => m['turnId'] === '2');
    const m = await scrape(http);

    expect(value(m, 'voxstate_turns_total', { source: 'voice' })).toBe(1);
    expect(value(m, 'voxstate_turns_total', { source: 'text' })).toBe(1);
    expect(value(m, 'voxstate_turns_total', { source: 'idle' })).toBe(0);
    // Only the voice turn has an audio edge.
    expect(value(m, 'voxstate_turn_latency_seconds_count')).toBe(1);
    const voiced = c.of('metrics.turn').find((t) => t['turnId'] === '1');
    expect(value(m, 'voxstate_turn_latency_seconds_sum')).toBeCloseTo((voiced?.['userStoppedToFirstAudioMs'] as number) / 1000, 6);
    // One batch transcription; one completion and one synthesized segment per turn ("Hi. How can I help?" is one segment).
    expect(value(m, 'voxstate_provider_latency_seconds_count', { provider: 'fake-stt', kind: 'stt' })).toBe(1);
    expect(value(m, 'voxstate_provider_latency_seconds_count', { provider: 'fake-llm', kind: 'llm' })).toBe(2);
    expect(value(m, 'voxstate_provider_latency_seconds_count', { provider: 'fake-tts', kind: 'tts' })).toBe(2);
    expect(value(m, 'voxstate_provider_errors_total', { provider: 'fake-llm', code: 'provider_failed' })).toBe(0);
    // Every 512-sample window of the streamed audio was scored by a batch, each batch observed once.
    const windows = Math.floor((pcm.length + (silenceMs * sampleRate) / 1000) / 512);
    expect(value(m, 'voxstate_vad_batch_size_sum')).toBeGreaterThanOrEqual(windows - 2);
    expect(value(m, 'voxstate_vad_batch_size_count')).toBeGreaterThan(0);
    expect(value(m, 'voxstate_vad_inference_seconds_count')).toBe(value(m, 'voxstate_vad_batch_size_count'));
    expect(value(m, 'voxstate_vad_inference_seconds_sum')).toBeGreaterThan(0);

    await closeSession(c);
    const after = await scrape(http);
    expect(value(after, 'voxstate_sessions_active')).toBe(0);
    expect(value(after, 'voxstate_sessions_total')).toBe(1);
  });

  it("a failing LLM is counted under its name and code; a client's interrupt is a confirmed interruption", async () => {
    const failing = new FakeLlm({ respond: () => ['never said'], fail: (n) => n === 1 });
    const { url, http } = await start({ llm: failing });
    const c = client(url);
    await c.hello();
    c.send({ type: 'user.text', text: 'hello?' });
    await c.next('error');
    await c.next('reply.done', (m) => m['replyId'] === '1');
    const failed = await scrape(http);
    expect(value(failed, 'voxstate_provider_errors_total', { provider: 'fake-llm', code: 'provider_failed' })).toBe(1);
    expect(value(failed, 'voxstate_provider_errors_total', { provider: 'fake-tts', code: 'provider_failed' })).toBe(0);
    // It never produced a token: no latency.
    expect(value(failed, 'voxstate_provider_latency_seconds_count', { provider: 'fake-llm', kind: 'llm' })).toBe(0);

    const long = new FakeLlm({ respond: () => [`${Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ')}.`] });
    const second = await start({ llm: long });
    const d = client(second.url);
    await d.hello();
    d.send({ type: 'user.text', text: 'talk' });
    await d.next('reply.audio_start');
    d.send({ type: 'session.interrupt' });
    expect(await d.next('reply.done')).toMatchObject({ interrupted: true });
    const cut = await scrape(second.http);
    expect(value(cut, 'voxstate_interruptions_total', { kind: 'confirmed' })).toBe(1);
    expect(value(cut, 'voxstate_interruptions_total', { kind: 'false' })).toBe(0);
  });

  it("two servers in one process keep their own series; servers given one registry add up; metrics: false has no route", async () => {
    const a = await start();
    const b = await start();
    const ca = client(a.url);
    await ca.hello();
    ca.send({ type: 'user.text', text: 'hi' });
    await ca.next('reply.done');
    expect(value(await scrape(a.http), 'voxstate_turns_total', { source: 'text' })).toBe(1);
    const other = await scrape(b.http);
    expect(value(other, 'voxstate_turns_total', { source: 'text' })).toBe(0);
    expect(value(other, 'voxstate_sessions_total')).toBe(0);
    expect(a.server.metricsRegistry).not.toBe(b.server.metricsRegistry);

    const registry = new Registry();
    const c = await start({ metrics: { registry } });
    const d = await start({ metrics: { registry } });
    expect(c.server.metricsRegistry).toBe(registry);
    await client(c.url).hello();
    await client(d.url).hello();
    const shared = parseExposition(await registry.metrics());
    expect(value(shared, 'voxstate_sessions_total')).toBe(2);
    expect(value(shared, 'voxstate_sessions_active')).toBe(2);
    expect(find(shared, 'process_cpu_seconds_total')).toHaveLength(1);
    expect(value(await scrape(d.http), 'voxstate_sessions_total')).toBe(2);

    const off = await start({ metrics: false });
    expect((await fetch(`${off.http}/metrics`)).status).toBe(404);
    expect(off.server.metricsRegistry).toBeUndefined();
  });

  it('from a non-loopback address /metrics needs a bearer token the auth hook accepts: none is 401, a wrong one 403', async () => {
    const address = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;
    if (address === undefined) throw new Error('this test needs a non-loopback IPv4 interface to connect from');
    const { server } = await start({ host: '0.0.0.0', auth: (token) => token === 'let-me-in' });
    const port = server.address?.port ?? 0;
    const remote = `http://${address}:${port}/metrics`;
    const none = await fetch(remote);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(remote, { headers: { authorization: 'Bearer wrong' } })).status).toBe(403);
    const allowed = await fetch(remote, { headers: { authorization: 'Bearer let-me-in' } });
    expect(allowed.status).toBe(200);
    expect(find(parseExposition(await allowed.text()), 'voxstate_sessions_active')).toHaveLength(1);
    expect((await fetch(`${remote}?token=let-me-in`)).status).toBe(200);
    // Loopback callers need none.
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
  });
});
