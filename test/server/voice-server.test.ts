import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import type { ChatMessage } from '../../src/providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { MemorySessionStore } from '../../src/session/store.js';
import { float32ToInt16 } from '../../src/audio/frame.js';
import { closeSpeech, speech } from '../helpers/speech.js';
import { delay, fixture, handleCounts, RawClient, streamRealtime } from './helpers.js';

const servers: VoiceServer[] = [];
const clients: RawClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});
afterAll(() => closeSpeech());

interface Setup {
  server: VoiceServer;
  url: string;
  port: number;
  llm: FakeLlm;
  stt: FakeStt;
}

async function start(options: Partial<VoiceServerOptions> & { reply?: string; heard?: string; llmFail?: (n: number) => boolean } = {}): Promise<Setup> {
  const stt = new FakeStt({ recognize: () => options.heard ?? 'hello there' });
  const llm = new FakeLlm({
    respond: () => [options.reply ?? 'Hi. How can I help?'],
    ...(options.llmFail === undefined ? {} : { fail: options.llmFail }),
  });
  const { reply: _r, heard: _h, llmFail: _f, ...rest } = options;
  const server = new VoiceServer({ port: 0, providers: { stt, llm, tts: new FakeTts({ msPerWord: 100 }) }, vad: false, ...rest });
  servers.push(server);
  const address = await server.start();
  return { server, url: address.url, port: address.port, llm, stt };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

describe('VoiceServer HTTP', () => {
  it('GET /health reports the live sessions and uptime; added routes answer; unknown paths are 404', async () => {
    const { server, port, url } = await start();
    server.route('GET', '/hello', (_req, res) => void res.end('hi'));
    const c = client(url);
    await c.hello();
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ ok: true, sessions: 1 });
    expect(typeof health['uptimeS']).toBe('number');
    expect(await (await fetch(`http://127.0.0.1:${port}/hello`)).text()).toBe('hi');
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    const head = await fetch(`http://127.0.0.1:${port}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('mounts on an existing http.Server and leaves its other requests alone', async () => {
    const http = createServer((req, res) => {
      if (req.url === '/app') res.end('app');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const server = new VoiceServer({ server: http, providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() }, vad: false });
    servers.push(server);
    const address = await server.start();
    expect(address.port).toBe(port);
    expect(await (await fetch(`http://127.0.0.1:${port}/app`)).text()).toBe('app');
    const c = client(address.url);
    expect((await c.hello()).type).toBe('session.ready');
    await c.close();
    await server.stop();
    expect(http.listening).toBe(true); // not ours to close
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
});

describe('VoiceServer sessions over WebSocket', () => {
  it('a typed turn streams state changes, reply text, agent audio and turn metrics; the system prompt reaches the LLM', async () => {
    const { url, llm } = await start({ systemPrompt: 'You are a terse host.', reply: 'A table for two. Anything else?' });
    const c = client(url);
    const ready = await c.hello({ transport: 'websocket', sampleRate: 24000 });
    expect(ready).toMatchObject({ protocol: 1, iceServers: [], audio: { transport: 'websocket', format: 'pcm16', sampleRate: 24000, frameMs: 20 } });
    expect(typeof ready['resumeToken']).toBe('string');
    c.send({ type: 'user.text', text: 'table for two' });
    const done = await c.next('reply.done');
    expect(done).toMatchObject({ replyId: '1', text: 'A table for two. Anything else?', interrupted: false });
    await c.next('metrics.turn');
    expect(c.of('session.state').map((m) => [m['state'], m['voice'], m['previous']])).toEqual([
      ['listening', 'silent', undefined],
      ['thinking', 'silent', 'listening'],
      ['speaking', 'silent', 'thinking'],
      ['listening', 'silent', 'speaking'],
    ]);
    expect(c.of('reply.delta').map((m) => m['text']).join('')).toBe('A table for two. Anything else?');
    // 6 words × 100 ms = 600 ms of audio at 24 kHz = 30 frames of 480 samples.
    expect(c.audio).toHaveLength(30);
    expect(c.audio.every((f) => f.length === 480)).toBe(true);
    expect(llm.requests[0]?.[0]).toEqual({ role: 'system', content: 'You are a terse host.' });
  });

  it('an idle user gets session.idle, one re-prompt through the LLM, then the session closes with reason idle', async () => {
    const { url, llm } = await start({ reply: 'Are you still there?', turn: { userIdleTimeoutMs: 300, maxIdlePrompts: 1 } });
    const c = client(url);
    await c.hello();
    expect(await c.next('session.idle')).toEqual({ type: 'session.idle', prompts: 0 });
    expect((await c.next('reply.done'))['text']).toBe('Are you still there?');
    expect(llm.requests[0]?.at(-1)).toMatchObject({ role: 'system' });
    await c.next('session.idle', (m) => m['prompts'] === 1);
    expect(await c.closed()).toBe(1000);
    expect(c.of('session.state').at(-1)).toMatchObject({ state: 'closed' });
  });

  it('invalid end-of-turn settings fail at construction with a ConfigError naming the field', () => {
    const providers = { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [] }), tts: new FakeTts() };
    expect(() => new VoiceServer({ providers, turn: { minEndpointingMs: 900, maxEndpointingMs: 500 } })).toThrow(/minEndpointingMs/);
    // The decision starts at the VAD's pause: minEndpointingMs must come after it.
    expect(() => new VoiceServer({ providers, vad: { pauseMs: 256 }, turn: { minEndpointingMs: 200 } })).toThrow(/pauseMs/);
    expect(() => new VoiceServer({ providers, vad: { pauseMs: 256 }, turn: { minEndpointingMs: 300 } })).not.toThrow();
  });

  it('speech streamed at real time over websocket audio is detected, transcribed and answered', async () => {
    const spoken: number[] = [];
    const transcripts: string[] = [];
    const { url } = await start({
      vad: {},
      heard: 'hello there how are you today',
      hooks: { onSpeechEnd: (e) => void spoken.push(e.durationMs), onTranscript: (e) => void transcripts.push(e.text) },
    });
    const c = client(url);
    await c.hello({ transport: 'websocket', sampleRate: 16000 });
    const { pcm, sampleRate } = fixture('hello.16k.wav');
    await streamRealtime((frame) => c.sendAudio(frame), pcm, sampleRate, 900);
    const start1 = await c.next('vad.speech_start');
    const end1 = await c.next('vad.speech_end');
    expect(start1['atMs']).toBeLessThan(150);
    expect(Math.abs((end1['atMs'] as number) - 1910)).toBeLessThan(150);
    expect(end1['voicedMs']).toBeGreaterThan(1000);
    expect(end1['voicedMs']).toBeLessThanOrEqual(end1['durationMs'] as number);
    expect(await c.next('transcript.final')).toMatchObject({ text: 'hello there how are you today' });
    await c.next('reply.done');
    // The voice region: speaking while the user talks (the turn stays listening), silent at the end of speech.
    const states = c.of('session.state').map((m) => `${String(m['state'])}|${String(m['voice'])}`);
    expect(states.slice(0, 2)).toEqual(['listening|silent', 'listening|speaking']);
    expect(states).toContain('transcribing|silent');
    expect(states.slice(-3)).toEqual(['thinking|silent', 'speaking|silent', 'listening|silent']);
    expect(c.audio.length).toBeGreaterThan(0);
    expect(spoken).toHaveLength(1);
    expect(transcripts).toEqual(['hello there how are you today']);
  });

  it('barge-in with stop.48k.wav cancels the reply and the history keeps only what was heard', async () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ') + '.';
    const { url, llm } = await start({ vad: {}, reply: long, heard: 'wait stop actually never mind' });
    const c = client(url);
    await c.hello({ transport: 'websocket', sampleRate: 48000 });
    c.send({ type: 'user.text', text: 'talk for a while' });
    await c.next('reply.audio_start');
    // Silence first (the client's mic is open), then the barge-in utterance.
    const { pcm, sampleRate } = fixture('stop.48k.wav');
    await streamRealtime((frame) => c.sendAudio(frame), new Int16Array(48_000), 48_000);
    const framesBefore = c.audio.length;
    await streamRealtime((frame) => c.sendAudio(frame), pcm, sampleRate, 800);
    const done = await c.next('reply.done');
    expect(done['interrupted']).toBe(true);
    // Heard during the reply: the speech, the pause at its onset, then the confirmation by voice.
    const during = c.messages.slice(c.messages.findIndex((m) => m.type === 'reply.audio_start'));
    expect(during.some((m) => m.type === 'vad.speech_start')).toBe(true);
    expect(during.some((m) => m.type === 'session.state' && m['state'] === 'interrupted.confirming' && m['voice'] === 'speaking')).toBe(true);
    const confirmed = await c.next('interruption.confirmed');
    expect(confirmed).toMatchObject({ replyId: '1', by: 'voice' });
    expect(confirmed['voicedMs']).toBeGreaterThanOrEqual(600);
    expect(c.messages.indexOf(confirmed)).toBeLessThan(c.messages.indexOf(done));
    expect(c.of('interruption.false')).toEqual([]);
    const heard = String(done['text']).split(' ');
    expect(heard.length).toBeGreaterThan(5);
    expect(heard.length).toBeLessThan(60);
    expect(long.startsWith(String(done['text']))).toBe(true);
    expect(framesBefore).toBeGreaterThan(0);
    await c.next('transcript.final');
    await c.next('reply.done', (m) => m['replyId'] === '2');
    const second = llm.requests[1] as readonly ChatMessage[];
    expect(second.find((m) => m.role === 'assistant')).toEqual({ role: 'assistant', content: done['text'], interrupted: true });
    expect(second.at(-1)).toEqual({ role: 'user', content: 'wait stop actually never mind' });
  });

  it('a backchannel ("yeah.") during a reply is a false interruption: interruption.false, the reply goes on to the end', async () => {
    const long = Array.from({ length: 50 }, (_, i) => `word${i}`).join(' ') + '.'; // 5 s of agent speech
    const { url, llm } = await start({ vad: {}, reply: long });
    const c = client(url);
    await c.hello({ transport: 'websocket', sampleRate: 16000 });
    const yeah = float32ToInt16(await speech('yeah.'));
    c.send({ type: 'user.text', text: 'talk for a while' });
    await c.next('reply.audio_start');
    await streamRealtime((frame) => c.sendAudio(frame), new Int16Array(8_000), 16_000); // 0.5 s of an open mic
    await streamRealtime((frame) => c.sendAudio(frame), yeah, 16_000, 1500);
    const notInterrupted = await c.next('interruption.false');
    expect(notInterrupted).toMatchObject({ replyId: '1' });
    expect(notInterrupted['voicedMs']).toBeGreaterThan(0);
    expect(notInterrupted['voicedMs']).toBeLessThan(600);
    const end = await c.next('vad.speech_end');
    expect(end['voicedMs']).toBe(notInterrupted['voicedMs']);
    const done = await c.next('reply.done', () => true, 20_000);
    expect(done).toEqual({ type: 'reply.done', replyId: '1', text: long, interrupted: false });
    expect(c.of('interruption.confirmed')).toEqual([]);
    // The turn paused at the onset and went back to speaking; the voice went speaking → silent meanwhile.
    const states = c.of('session.state').map((m) => `${String(m['state'])}|${String(m['voice'])}`);
    const paused = states.findIndex((s) => s.startsWith('interrupted.'));
    expect(paused).toBeGreaterThan(0);
    expect(states.slice(paused)).toContain('interrupted.confirming|speaking');
    expect(states.slice(paused)).toContain('interrupted.paused|silent');
    expect(states.slice(paused)).toContain('speaking|silent');
    expect(states.at(-1)).toBe('listening|silent');
    // 50 words × 100 ms in 20 ms frames: all of it, none twice; nothing was recorded for the "yeah".
    expect(c.audio).toHaveLength(250);
    c.send({ type: 'user.text', text: 'thanks' });
    await c.next('reply.done', (m) => m['replyId'] === '2');
    expect(llm.requests[1]?.map((m) => m.content)).toEqual(['talk for a while', long, 'thanks']);
  });

  it('with playback.progress reports, an interruption keeps only the words the client says it played', async () => {
    const reply = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ') + '.'; // 100 ms per word
    const { url } = await start({ reply });
    const c = client(url);
    await c.hello();
    c.send({ type: 'user.text', text: 'go' });
    await c.next('reply.audio_start');
    // The client plays 500 ms behind what it has received (its jitter buffer).
    const report = setInterval(() => {
      const playedMs = Math.max(0, c.audio.length * 20 - 500);
      c.send({ type: 'playback.progress', replyId: '1', playedMs });
    }, 40);
    await delay(1500);
    clearInterval(report);
    const lastReported = Math.max(0, c.audio.length * 20 - 500);
    c.send({ type: 'playback.progress', replyId: '1', playedMs: lastReported });
    await delay(30);
    c.send({ type: 'session.interrupt' });
    const done = await c.next('reply.done');
    expect(done['interrupted']).toBe(true);
    const heardWords = String(done['text']).split(' ').length;
    const sentWords = Math.floor((c.audio.length * 20) / 100);
    // Not what was sent (~15 words) but what was reported as played (~10), to the word.
    expect(sentWords - heardWords).toBeGreaterThanOrEqual(4);
    expect(Math.abs(heardWords - Math.floor(lastReported / 100))).toBeLessThanOrEqual(1);
  });

  it('a dropped socket resumed within the TTL keeps the history; a wrong token and an unknown session are refused', async () => {
    const { url, llm } = await start({ session: { ttlMs: 5_000 } });
    const first = client(url);
    const ready = await first.hello();
    first.send({ type: 'user.text', text: 'remember the number seven' });
    await first.next('reply.done');
    first.socket.terminate();
    await first.closed();

    const thief = client(url);
    await thief.opened();
    thief.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: 'guessed' });
    expect(await thief.next('error')).toMatchObject({ code: 'session_resume_refused', fatal: true });
    expect(await thief.closed()).toBe(4403);

    const stranger = client(url);
    await stranger.opened();
    stranger.send({ type: 'session.resume', protocol: 1, sessionId: 'no-such-session', resumeToken: 'x' });
    expect(await stranger.next('error')).toMatchObject({ code: 'session_not_found' });
    expect(await stranger.closed()).toBe(4404);

    const back = client(url);
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    expect(await back.next('session.resumed')).toMatchObject({ sessionId: ready['sessionId'], state: 'listening', voice: 'silent' });
    back.send({ type: 'user.text', text: 'what was the number?' });
    await back.next('reply.done');
    expect(llm.requests[1]?.map((m) => m.content)).toEqual(['remember the number seven', 'Hi. How can I help?', 'what was the number?']);
  });

  it('a socket dropped mid-reply: the reply keeps its place (paused) and goes on to the end after the resume', async () => {
    const reply = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ') + '.'; // 2 s of agent speech
    const { url, server } = await start({ reply, session: { ttlMs: 5_000 } });
    const first = client(url);
    const ready = await first.hello();
    first.send({ type: 'user.text', text: 'go' });
    await first.next('reply.audio_start');
    await delay(400);
    first.socket.terminate();
    await first.closed();
    await delay(300); // suspended: no audio goes anywhere
    const back = client(url);
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    expect(await back.next('session.resumed')).toMatchObject({ state: 'speaking', voice: 'silent' });
    const done = await back.next('reply.done');
    expect(done).toMatchObject({ replyId: '1', text: reply, interrupted: false });
    expect(back.of('reply.audio_end')).toEqual([{ type: 'reply.audio_end', replyId: '1' }]);
    // The reply went on from where it paused: none of it twice, and none lost to the gap beyond the
    // frame or two the server sent into the dead socket before it noticed the drop.
    const total = first.audio.length + back.audio.length;
    expect(total).toBeLessThanOrEqual(100);
    expect(total).toBeGreaterThanOrEqual(98);
    expect(back.of('session.state').map((m) => [m['state'], m['previous']])).toEqual([['listening', 'speaking']]);
    expect(server.sessions).toBe(1);
  });

  it('a session store shared by two servers lets a client resume after the first server stopped', async () => {
    const store = new MemorySessionStore();
    const first = await start({ session: { store, ttlMs: 5_000 } });
    const c = client(first.url);
    const ready = await c.hello({ transport: 'websocket', sampleRate: 24000 });
    c.send({ type: 'user.text', text: 'my name is Ada' });
    await c.next('reply.done');
    await first.server.stop();
    expect(await c.closed()).toBe(1001);

    const second = await start({ session: { store, ttlMs: 5_000 } });
    const thief = client(second.url);
    await thief.opened();
    thief.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: 'guess' });
    expect(await thief.next('error')).toMatchObject({ code: 'session_resume_refused' });

    const back = client(second.url);
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    expect(await back.next('session.resumed')).toMatchObject({ sessionId: ready['sessionId'], state: 'listening', voice: 'silent' });
    back.send({ type: 'user.text', text: 'what is my name?' });
    await back.next('reply.done');
    expect(back.audio[0]?.length).toBe(480); // still 24 kHz frames
    expect(second.llm.requests[0]?.map((m) => m.content)).toEqual(['my name is Ada', 'Hi. How can I help?', 'what is my name?']);
  });

  it('a session not resumed within the TTL is gone: a late resume gets session_expired (4408)', async () => {
    const { url, server } = await start({ session: { ttlMs: 200 } });
    const first = client(url);
    const ready = await first.hello();
    first.socket.terminate();
    await delay(400);
    expect(server.sessions).toBe(0);
    const late = client(url);
    await late.opened();
    late.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
    expect(await late.next('error')).toMatchObject({ code: 'session_expired', fatal: true });
    expect(await late.closed()).toBe(4408);
  });

  it('a provider failure in one session is an error event there and leaves another session untouched', async () => {
    const { url } = await start({ llmFail: (n) => n === 1 });
    const a = client(url);
    const b = client(url);
    await a.hello();
    await b.hello();
    a.send({ type: 'user.text', text: 'fail please' });
    expect(await a.next('error')).toMatchObject({ code: 'provider_failed', fatal: false });
    await a.next('session.state', (m) => m['state'] === 'listening' && m['previous'] === 'thinking');
    b.send({ type: 'user.text', text: 'hello' });
    expect(await b.next('reply.done')).toMatchObject({ interrupted: false });
    expect(b.of('error')).toEqual([]);
  });

  it('hooks run, a throwing hook is reported on the error event, and the guard can veto a typed turn', async () => {
    const errors: string[] = [];
    const turns: string[] = [];
    const { url, server, llm } = await start({
      hooks: {
        onTurnStart: () => {
          throw new Error('hook exploded');
        },
        onTurnEnd: (m) => void turns.push(m.turnId),
        guard: ({ kind, text }) => (kind === 'user' && text.includes('secret') ? { action: 'veto' } : { action: 'allow' }),
      },
    });
    server.on('error', (e) => errors.push(e.message));
    const c = client(url);
    await c.hello();
    c.send({ type: 'user.text', text: 'my secret is 42' });
    c.send({ type: 'user.text', text: 'hello' });
    await c.next('reply.done');
    await c.next('metrics.turn');
    expect(llm.requests).toHaveLength(1);
    expect(llm.requests[0]?.at(-1)).toEqual({ role: 'user', content: 'hello' });
    expect(errors).toEqual(['hook onTurnStart failed: hook exploded']);
    expect(turns).toEqual(['1']);
  });

  it('stop() closes every session and socket, frees the port and leaves no handle behind', async () => {
    await delay(50); // let earlier tests' sockets finish closing
    const before = handleCounts();
    const { url, server, port } = await start({ vad: {} });
    const a = client(url);
    await a.hello();
    a.send({ type: 'user.text', text: 'hello' });
    await a.next('reply.audio_start');
    await server.stop();
    expect(await a.closed()).toBe(1001);
    expect(server.sessions).toBe(0);
    clients.splice(0);
    await delay(50);
    const after = handleCounts();
    for (const kind of new Set([...Object.keys(before), ...Object.keys(after)])) {
      expect(after[kind] ?? 0, kind).toBeLessThanOrEqual(before[kind] ?? 0);
    }
    // The port is free again.
    const again = createServer();
    await new Promise<void>((resolve) => again.listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => again.close(() => resolve()));
  });
});

describe('VoiceServer bad input', () => {
  it('malformed JSON, unknown types, oversized messages and early messages get an error with a code; the connection survives', async () => {
    const { url } = await start({ maxMessageBytes: 1024 });
    const c = client(url);
    await c.opened();
    c.send('{not json');
    expect(await c.next('error')).toMatchObject({ code: 'protocol_invalid_json', fatal: false });
    c.send({ type: 'user.shout' });
    expect(await c.next('error', (m) => m['code'] !== 'protocol_invalid_json')).toMatchObject({ code: 'protocol_invalid_message', fatal: false });
    c.send({ type: 'user.text', text: 'x'.repeat(2000) });
    expect(await c.next('error', (m) => m['code'] === 'protocol_message_too_large')).toMatchObject({ fatal: false });
    c.send({ type: 'user.text', text: 'too early' });
    expect(await c.next('error', (m) => m['code'] === 'protocol_not_ready')).toMatchObject({ fatal: false });
    c.sendAudio(new Int16Array(320));
    expect(c.of('error').filter((m) => m['code'] === 'protocol_not_ready').length).toBeGreaterThanOrEqual(1);
    c.send({ type: 'ping', t: 7 });
    expect(await c.next('pong')).toMatchObject({ t: 7 });
    expect((await c.hello()).type).toBe('session.ready');
  });

  it('odd-length audio frames are refused with audio_invalid_format and the session carries on', async () => {
    const { url } = await start({ vad: {} });
    const c = client(url);
    await c.hello();
    c.socket.send(Buffer.alloc(321));
    expect(await c.next('error')).toMatchObject({ code: 'audio_invalid_format', fatal: false });
    c.send({ type: 'user.text', text: 'still there?' });
    expect(await c.next('reply.done')).toMatchObject({ interrupted: false });
  });

  it('an unsupported protocol version is refused and the socket closed with 4426', async () => {
    const { url } = await start();
    const c = client(url);
    await c.opened();
    c.send({ type: 'session.hello', protocol: 99, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(await c.next('error')).toMatchObject({ code: 'protocol_unsupported_version', fatal: true });
    expect(await c.closed()).toBe(4426);
  });

  it('auth refuses a bad token with auth_failed (4401); limits refuse sessions beyond the maximum (4429)', async () => {
    const { url } = await start({
      auth: (token) => (token === 'good' ? { principal: 'alice' } : false),
      session: { limits: { maxSessions: 10, maxPerIp: 10, maxPerPrincipal: 1 } },
    });
    const bad = client(url);
    await bad.opened();
    bad.send({ type: 'session.hello', protocol: 1, token: 'bad', audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(await bad.next('error')).toMatchObject({ code: 'auth_failed', fatal: true });
    expect(await bad.closed()).toBe(4401);
    const first = client(url);
    await first.hello(undefined, 'good');
    const second = client(url);
    await second.opened();
    second.send({ type: 'session.hello', protocol: 1, token: 'good', audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(await second.next('error')).toMatchObject({ code: 'session_limit', fatal: true });
    expect(await second.closed()).toBe(4429);
  });

  it('a message flood is cut off with session_limit (4429) without touching another session', async () => {
    const { url } = await start({ maxMessagesPerSecond: 20 });
    const flooder = client(url);
    const calm = client(url);
    await flooder.hello();
    await calm.hello();
    for (let i = 0; i < 100; i++) flooder.send({ type: 'ping', t: i });
    expect(await flooder.next('error')).toMatchObject({ code: 'session_limit', fatal: true });
    expect(await flooder.closed()).toBe(4429);
    calm.send({ type: 'user.text', text: 'hello' });
    expect(await calm.next('reply.done')).toMatchObject({ interrupted: false });
  });

  it('SDP garbage on a WebRTC session is protocol_invalid_message; WebRTC messages on a websocket session are session_invalid_state', async () => {
    const { url } = await start();
    const rtc = client(url);
    await rtc.hello({ transport: 'webrtc', sampleRate: 48000 });
    rtc.send({ type: 'webrtc.offer', sdp: 'this is not sdp' });
    expect(await rtc.next('error')).toMatchObject({ code: 'protocol_invalid_message', fatal: false });
    const ws = client(url);
    await ws.hello();
    ws.send({ type: 'webrtc.offer', sdp: 'v=0' });
    expect(await ws.next('error')).toMatchObject({ code: 'session_invalid_state', fatal: false });
  });

  it('a second session.hello on the same connection is session_invalid_state', async () => {
    const { url } = await start();
    const c = client(url);
    await c.hello();
    c.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(await c.next('error')).toMatchObject({ code: 'session_invalid_state', fatal: false });
  });
});
