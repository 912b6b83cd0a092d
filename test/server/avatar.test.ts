/**
 * The avatar path end to end on loopback: VoiceServer sessions with a Motion Server link to the
 * embedded local Motion Server; the client receives avatar.audio / avatar.frames / avatar.interrupt.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { delay, RawClient } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(reply: string, apiKey = 'test-key'): Promise<{ url: string; motion: LocalMotionServer }> {
  const motion = new LocalMotionServer();
  const info = await motion.start({ apiKey: 'test-key', appId: 'app-1', avatars: ['avatar-1'] });
  cleanup.push(() => motion.stop());
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [reply] }), tts: new FakeTts({ msPerWord: 200 }) },
    motion: {
      apiKey,
      appId: 'app-1',
      avatarId: 'avatar-1',
      consoleEndpointUrl: info.consoleEndpointUrl,
      ingressEndpointUrl: info.ingressEndpointUrl,
      reconnect: { maxAttempts: 1 },
    },
  });
  const { url } = await server.start();
  cleanup.push(() => server.stop());
  return { url, motion };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  cleanup.push(() => c.close());
  return c;
}

describe('avatar relay', () => {
  it("a reply's audio comes back as avatar.audio and 25 fps avatar.frames under one conversation id, ending once", async () => {
    const { url } = await setup('one two three four five six seven eight nine ten.'); // 2 s of speech
    const c = client(url);
    await c.hello();
    await delay(300); // the link connects
    c.send({ type: 'user.text', text: 'count' });
    await c.next('reply.done');
    await c.next('avatar.frames', (m) => m['isLast'] === true, 5_000);
    const frames = c.of('avatar.frames');
    const audio = c.of('avatar.audio');
    const ids = new Set([...frames, ...audio].map((m) => m['conversationId']));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^\d{14}_[A-Za-z0-9]{12}$/);
    expect(frames.filter((m) => m['isLast'] === true)).toHaveLength(1);
    // 2 s of audio at 25 keyframes per second (one envelope per keyframe by default).
    const envelopes = frames.reduce((n, m) => n + (m['frames'] as string[]).length, 0);
    expect(envelopes).toBeGreaterThanOrEqual(49);
    expect(envelopes).toBeLessThanOrEqual(52);
    const audioBytes = audio.reduce((n, m) => n + Buffer.from(String(m['audio']), 'base64').length, 0);
    expect(audioBytes / 2 / 16_000).toBeCloseTo(2, 1);
  });

  it('a client interrupt mid-reply sends avatar.interrupt and the frames of that reply stop', async () => {
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ') + '.';
    const { url } = await setup(long);
    const c = client(url);
    await c.hello();
    await delay(300);
    c.send({ type: 'user.text', text: 'talk' });
    await c.next('avatar.frames');
    await delay(500);
    c.send({ type: 'session.interrupt' });
    await c.next('avatar.interrupt');
    const at = c.messages.length;
    await delay(300);
    const late = c.messages.slice(at).filter((m) => m.type === 'avatar.frames' && m['isLast'] !== true);
    // At most what was already in flight within one frame period.
    expect(late.length).toBeLessThanOrEqual(2);
    expect(await c.next('reply.done')).toMatchObject({ interrupted: true });
  });

  it('a Motion Server that refuses the key is an error event; the voice conversation carries on without the avatar', async () => {
    const { url } = await setup('Hello there friend.', 'wrong-key');
    const c = client(url);
    await c.hello();
    const error = await c.next('error', (m) => String(m['message']).startsWith('avatar:'));
    expect(error['fatal']).toBe(false);
    c.send({ type: 'user.text', text: 'hi' });
    expect(await c.next('reply.done')).toMatchObject({ text: 'Hello there friend.', interrupted: false });
    expect(c.of('avatar.frames')).toEqual([]);
  });
});
