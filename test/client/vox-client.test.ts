import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { VoxClient, type VoxClientEvents, type VoxClientOptions } from '../../src/client/index.js';
import { startProtocolServer, type ProtocolServer } from './protocol-server.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function server(): Promise<ProtocolServer> {
  const started = await startProtocolServer();
  cleanups.push(() => started.close());
  return started;
}

function client(url: string, overrides: Partial<VoxClientOptions> = {}): VoxClient {
  const created = new VoxClient({
    url,
    token: 'client-secret',
    audio: { transport: 'websocket', sampleRate: 16_000 },
    reconnect: { initialDelayMs: 40, maxDelayMs: 1000, maxAttempts: 5, jitter: 0 },
    heartbeatMs: 0,
    WebSocket: WebSocket,
    ...overrides,
  });
  cleanups.push(() => created.close());
  return created;
}

function record<K extends keyof VoxClientEvents>(target: VoxClient, event: K): Array<VoxClientEvents[K]> {
  const seen: Array<VoxClientEvents[K]> = [];
  target.on(event, (payload) => seen.push(payload));
  return seen;
}

describe('VoxClient', () => {
  it('connect() says hello with the protocol version and resolves with session.ready', async () => {
    const srv = await server();
    const vox = client(srv.url, { options: { language: 'en-US' } });
    const readyEvents = record(vox, 'ready');
    const ready = await vox.connect();
    expect(ready).toMatchObject({ sessionId: 'sess_test', protocol: 1, audio: { format: 'pcm16', sampleRate: 16_000 } });
    expect(vox.status).toBe('open');
    expect(vox.sessionId).toBe('sess_test');
    expect(readyEvents).toHaveLength(1);
    expect(srv.received[0]?.message).toEqual({
      type: 'session.hello',
      protocol: 1,
      token: 'client-secret',
      audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16_000, channels: 1 },
      options: { language: 'en-US' },
    });
  });

  it('turns server messages into typed events, including agent audio tagged with its reply', async () => {
    const srv = await server();
    const vox = client(srv.url);
    await vox.connect();
    const states = record(vox, 'state');
    const voices = record(vox, 'voice');
    const falseInterruptions = record(vox, 'interruption.false');
    const transcripts = record(vox, 'transcript');
    const deltas = record(vox, 'reply.delta');
    const audio = record(vox, 'audio');
    const done = record(vox, 'reply.done');

    srv.send({ type: 'session.state', state: 'listening', voice: 'silent' });
    srv.send({ type: 'session.state', state: 'listening', voice: 'speaking', previous: 'listening' });
    srv.send({ type: 'transcript.partial', text: 'book a' });
    srv.send({ type: 'transcript.final', text: 'book a table' });
    srv.send({ type: 'reply.delta', replyId: 'r1', text: 'Sure' });
    srv.send({ type: 'reply.audio_start', replyId: 'r1', sampleRate: 16_000 });
    srv.sendBinary(Buffer.from(new Int16Array([1, -2, 3, -4]).buffer));
    srv.send({ type: 'reply.audio_end', replyId: 'r1' });
    srv.send({ type: 'session.state', state: 'interrupted.provisional', voice: 'silent', previous: 'speaking' });
    srv.send({ type: 'interruption.false', replyId: 'r1', voicedMs: 416 });
    srv.send({ type: 'session.state', state: 'speaking', voice: 'silent', previous: 'interrupted.provisional' });
    srv.send({ type: 'reply.done', replyId: 'r1', text: 'Sure', interrupted: false });

    await expect.poll(() => done.length).toBe(1);
    expect(states).toEqual([
      { state: 'listening', previous: undefined, voice: 'silent' },
      { state: 'listening', previous: 'listening', voice: 'speaking' },
      { state: 'interrupted.provisional', previous: 'speaking', voice: 'silent' },
      { state: 'speaking', previous: 'interrupted.provisional', voice: 'silent' },
    ]);
    // The voice event fires only when the voice changes.
    expect(voices).toEqual([
      { voice: 'silent', previous: undefined },
      { voice: 'speaking', previous: 'silent' },
      { voice: 'silent', previous: 'speaking' },
    ]);
    expect(vox.state).toBe('speaking');
    expect(vox.voice).toBe('silent');
    expect(falseInterruptions).toEqual([{ type: 'interruption.false', replyId: 'r1', voicedMs: 416 }]);
    expect(transcripts).toEqual([
      { text: 'book a', final: false },
      { text: 'book a table', final: true },
    ]);
    expect(deltas[0]).toEqual({ type: 'reply.delta', replyId: 'r1', text: 'Sure' });
    expect(audio).toHaveLength(1);
    expect(Array.from(audio[0]?.pcm ?? [])).toEqual([1, -2, 3, -4]);
    expect(audio[0]).toMatchObject({ sampleRate: 16_000, replyId: 'r1' });
  });

  it('sends PCM as binary frames and text, interrupts and playback reports as protocol messages', async () => {
    const srv = await server();
    const vox = client(srv.url);
    await vox.connect();
    expect(vox.sendPcm(new Int16Array([100, -100, 200]))).toBe(true);
    expect(vox.sendText('hello there')).toBe(true);
    expect(vox.interrupt()).toBe(true);
    expect(vox.reportPlayback('r1', 480)).toBe(true);
    await expect.poll(() => srv.received.length).toBe(4);
    expect(srv.received.slice(1).map((entry) => entry.message)).toEqual([
      { type: 'user.text', text: 'hello there' },
      { type: 'session.interrupt' },
      { type: 'playback.progress', replyId: 'r1', playedMs: 480 },
    ]);
    expect(srv.binary).toHaveLength(1);
    expect(srv.binary[0]?.readInt16LE(2)).toBe(-100);
  });

  it('reports an invalid server message as an error event and keeps the connection', async () => {
    const srv = await server();
    const vox = client(srv.url);
    await vox.connect();
    const errors = record(vox, 'error');
    const states = record(vox, 'state');
    srv.sendRaw('{"type":"session.state","state":42,"voice":"silent"}');
    srv.sendRaw('{"type":"session.state","state":"listening"}');
    srv.sendRaw('not json');
    srv.sendBinary(Buffer.alloc(3));
    srv.send({ type: 'session.state', state: 'thinking', voice: 'silent' });
    await expect.poll(() => states.length).toBe(1);
    expect(errors.map((error) => error.code)).toEqual(['protocol_invalid_message', 'protocol_invalid_message', 'protocol_invalid_json', 'audio_invalid_format']);
    expect(errors.every((error) => error.source === 'client' && !error.fatal)).toBe(true);
    expect(vox.status).toBe('open');
  });

  it('a dropped socket triggers reconnect with exponential backoff and session.resume', async () => {
    const srv = await server();
    const vox = client(srv.url, { reconnect: { initialDelayMs: 40, maxDelayMs: 1000, maxAttempts: 5, jitter: 0 } });
    await vox.connect();
    const reconnecting = record(vox, 'reconnecting');
    const resumed = record(vox, 'resumed');
    const disconnected = record(vox, 'disconnected');

    srv.refuseNext(2); // the first two attempts find the server unavailable
    srv.dropAll();
    await expect.poll(() => resumed.length, { timeout: 3000 }).toBe(1);

    expect(disconnected[0]?.code).toBe(1006);
    expect(reconnecting.map((event) => [event.attempt, event.delayMs])).toEqual([
      [1, 40],
      [2, 80],
      [3, 160],
    ]);
    expect(resumed[0]).toMatchObject({ sessionId: 'sess_test', state: 'speaking', voice: 'silent' });
    expect(vox.state).toBe('speaking');
    expect(vox.voice).toBe('silent');
    const resume = srv.received.find((entry) => entry.message.type === 'session.resume');
    expect(resume?.message).toEqual({ type: 'session.resume', sessionId: 'sess_test', resumeToken: 'resume_secret', protocol: 1 });
    expect(resume?.connection).toBe(2);
    expect(vox.status).toBe('open');
    expect(vox.sendText('still here')).toBe(true);
    await expect.poll(() => srv.received.at(-1)?.message).toEqual({ type: 'user.text', text: 'still here' });
  });

  it('jitter shortens each backoff delay by up to the configured fraction', async () => {
    const srv = await server();
    const vox = client(srv.url, { reconnect: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, random: () => 1 });
    await vox.connect();
    const reconnecting = record(vox, 'reconnecting');
    const resumed = record(vox, 'resumed');
    srv.dropAll();
    await expect.poll(() => resumed.length).toBe(1);
    expect(reconnecting[0]?.delayMs).toBe(50);
  });

  it('a heartbeat that goes unanswered triggers a reconnect and resume', async () => {
    const srv = await server();
    const vox = client(srv.url, { heartbeatMs: 60, heartbeatTimeoutMs: 100 });
    await vox.connect();
    await expect.poll(() => vox.rttMs).toBeDefined();
    const reconnecting = record(vox, 'reconnecting');
    const resumed = record(vox, 'resumed');
    const errors = record(vox, 'error');

    srv.answerPings = false;
    await expect.poll(() => reconnecting.length, { timeout: 2000 }).toBe(1);
    expect(reconnecting[0]).toMatchObject({ code: 4000, reason: 'heartbeat timeout' });
    expect(errors[0]?.message).toMatch(/no pong/);
    srv.answerPings = true;
    await expect.poll(() => resumed.length, { timeout: 2000 }).toBe(1);
    expect(srv.connections()).toBe(2);
  });

  it('a refused resume ends the client with the server error and no further attempts', async () => {
    const srv = await server();
    const vox = client(srv.url);
    await vox.connect();
    const errors = record(vox, 'error');
    const closed = record(vox, 'closed');
    srv.acceptResume = false;
    srv.dropAll();
    await expect.poll(() => closed.length, { timeout: 2000 }).toBe(1);
    expect(errors.map((error) => [error.code, error.source])).toEqual([['session_resume_refused', 'server']]);
    expect(closed[0]?.code).toBe(4403);
    expect(vox.status).toBe('closed');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(srv.connections()).toBe(2);
  });

  it('gives up after maxAttempts and emits closed', async () => {
    const srv = await server();
    const vox = client(srv.url, { reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 2, jitter: 0 } });
    await vox.connect();
    const closed = record(vox, 'closed');
    const reconnecting = record(vox, 'reconnecting');
    srv.refuseNext(10);
    srv.dropAll();
    await expect.poll(() => closed.length, { timeout: 2000 }).toBe(1);
    expect(reconnecting).toHaveLength(2);
    expect(closed[0]?.reason).toMatch(/exhausted/);
  });

  it('close() sends session.close, does not reconnect and is idempotent', async () => {
    const srv = await server();
    const vox = client(srv.url);
    await vox.connect();
    const reconnecting = record(vox, 'reconnecting');
    const closed = record(vox, 'closed');
    await Promise.all([vox.close(), vox.close()]);
    await vox.close();
    expect(srv.received.at(-1)?.message).toEqual({ type: 'session.close' });
    expect(closed).toEqual([{ code: 1000, reason: 'client closed' }]);
    expect(reconnecting).toHaveLength(0);
    expect(vox.sendText('too late')).toBe(false);
    await expect.poll(() => srv.sockets().length).toBe(0);
  });

  it('connect() rejects when nothing listens, and the client can try again', async () => {
    const srv = await server();
    srv.refuseNext(1);
    const vox = client(srv.url);
    await expect(vox.connect()).rejects.toMatchObject({ code: 'internal' });
    expect(vox.status).toBe('idle');
    await expect(vox.connect()).resolves.toMatchObject({ sessionId: 'sess_test' });
  });

  it('a listener that throws does not break the client', async () => {
    const srv = await server();
    const listenerErrors: unknown[] = [];
    const vox = client(srv.url, { onListenerError: (error) => listenerErrors.push(error) });
    await vox.connect();
    vox.on('state', () => {
      throw new Error('ui bug');
    });
    const states = record(vox, 'state');
    srv.send({ type: 'session.state', state: 'speaking', voice: 'silent' });
    srv.send({ type: 'session.state', state: 'listening', voice: 'silent', previous: 'speaking' });
    await expect.poll(() => states.length).toBe(2);
    expect(listenerErrors).toHaveLength(2);
  });
});
