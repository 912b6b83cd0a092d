/**
 * Barge-in on the avatar path, by the Server SDK's rule (docs/motion.md, "Barge-in"):
 * - own transport (no egress): stop sending the reply's audio, end its request, drop its late
 *   frames, tell the client `avatar.interrupt` — no CLIENT_INTERRUPT on the wire;
 * - egress (LiveKit / Agora): CLIENT_INTERRUPT for the last req_id only.
 * End to end on loopback: VoiceServer + the local Motion Server + a WebSocket client; and the link
 * alone where the wire is what matters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, type Actor } from 'xstate';
import type { MotionLinkOutput } from '../../machines/motion-link.js';
import { createMotionLinkActor, interruptVia, type MotionLinkLogic, type MotionLinkOptions } from '../../src/motion/link.js';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import type { MotionFaults } from '../../src/motion/local-server/faults.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { RawClient } from '../server/helpers.js';
import { sleep, speech, startServer, until } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const LONG_REPLY = `${Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ')}.`; // 6 s of speech

async function voiceServer(motionOptions: Partial<MotionLinkOptions>, faults: MotionFaults) {
  const motion = new LocalMotionServer();
  const info = await motion.start({ apiKey: 'test-key', appId: 'app-1', avatars: ['avatar-1'], faults });
  cleanup.push(() => motion.stop());
  const server = new VoiceServer({
    port: 0,
    vad: false,
    // Real-time TTS (100 ms of audio every 100 ms), so the reply is still being sent at the barge-in.
    providers: {
      stt: new FakeStt({ recognize: () => '' }),
      llm: new FakeLlm({ respond: () => [LONG_REPLY] }),
      tts: new FakeTts({ msPerWord: 200, chunkMs: 100, chunkIntervalMs: 100 }),
    },
    motion: {
      apiKey: 'test-key',
      appId: 'app-1',
      avatarId: 'avatar-1',
      consoleEndpointUrl: info.consoleEndpointUrl,
      ingressEndpointUrl: info.ingressEndpointUrl,
      reconnect: { maxAttempts: 1 },
      ...motionOptions,
    },
  });
  const { url } = await server.start();
  cleanup.push(() => server.stop());
  const client = new RawClient(url);
  cleanup.push(() => client.close());
  await client.hello();
  await until(() => motion.connectionCount === 1, 5000, 'the motion link');
  // The socket is up; configure → confirm follows within a few ms (audio before it is not animated).
  await sleep(300);
  return { motion, client };
}

describe('barge-in on voxstate’s own transport (the SDK ends the request)', () => {
  it('the client gets avatar.interrupt and no late frame of that reply, though the Motion Server still animates them', async () => {
    // Every envelope leaves the Motion Server 400 ms after its audio: plenty in flight at the barge-in.
    const { motion, client } = await voiceServer({}, { frameDelayMs: 400 });
    client.send({ type: 'user.text', text: 'talk' });
    const first = await client.next('avatar.frames');
    const conversationId = first['conversationId'];
    await sleep(600);
    client.send({ type: 'session.interrupt' });
    await client.next('avatar.interrupt');
    const at = client.messages.length;
    const sentAtInterrupt = motion.stats.animationMessages;
    await sleep(700);

    const late = client.messages.slice(at).filter((m) => m.type === 'avatar.frames' || m.type === 'avatar.audio');
    expect(late.filter((m) => m['conversationId'] === conversationId)).toEqual([]);
    // The server was not interrupted: it went on sending the frames of the audio it had.
    expect(motion.stats.interrupts).toBe(0);
    expect(motion.stats.animationMessages).toBeGreaterThan(sentAtInterrupt);
    // The request was ended (its end-of-request), so nothing of it stays open on the server.
    expect(motion.retained.openRequests).toBe(0);
    expect(motion.retained.finishedRequests).toBe(1);
    expect(await client.next('reply.done')).toMatchObject({ interrupted: true });
    // No avatar error: no audio of the cut reply reached the server after its end.
    expect(client.of('error')).toEqual([]);
  });

  it('the next reply animates under a new conversation id', async () => {
    const { client } = await voiceServer({}, {});
    client.send({ type: 'user.text', text: 'talk' });
    const first = await client.next('avatar.frames');
    client.send({ type: 'session.interrupt' });
    await client.next('avatar.interrupt');
    await client.next('reply.done');
    client.send({ type: 'user.text', text: 'again' });
    const next = await client.next('avatar.frames', (m) => m['conversationId'] !== first['conversationId']);
    expect(next['conversationId']).toMatch(/^\d{14}_/);
    expect(client.of('avatar.audio').some((m) => m['conversationId'] === next['conversationId'])).toBe(true);
  });
});

describe('barge-in in egress mode (the SDK sends CLIENT_INTERRUPT)', () => {
  it('CLIENT_INTERRUPT reaches the Motion Server; the client gets avatar.interrupt and never any frames', async () => {
    const { motion, client } = await voiceServer({ egress: { type: 'agora', channelName: 'room-1', token: 't', uid: 7 } }, { frameDelayMs: 200 });
    client.send({ type: 'user.text', text: 'talk' });
    await client.next('reply.audio_start');
    await until(() => motion.stats.animationMessages > 3, 5000, 'egress progress');
    client.send({ type: 'session.interrupt' });
    await client.next('avatar.interrupt');
    await until(() => motion.stats.interrupts === 1, 2000, 'CLIENT_INTERRUPT');
    const sent = motion.stats.animationMessages;
    await sleep(500);
    // The server stopped that request at once: nothing queued for it went out.
    expect(motion.stats.animationMessages).toBe(sent);
    expect(client.of('avatar.frames')).toEqual([]);
    expect(client.of('avatar.audio')).toEqual([]);
  });
});

describe('the link alone', () => {
  const actors: Array<Actor<MotionLinkLogic>> = [];
  afterEach(() => {
    for (const actor of actors.splice(0)) actor.stop();
  });

  async function link(options: Partial<MotionLinkOptions>, faults: MotionFaults) {
    const harness = await startServer({ faults });
    cleanup.push(() => harness.server.stop());
    const actor = createActor(createMotionLinkActor({ ...harness.clientOptions(), ...options }), { input: {} });
    actors.push(actor);
    const events: MotionLinkOutput[] = [];
    actor.on('*', (event) => events.push(event as MotionLinkOutput));
    actor.start();
    await until(() => actor.getSnapshot().matches({ live: 'ready' }), 3000, 'ready');
    return { actor, events, server: harness.server };
  }

  it('egress: CLIENT_INTERRUPT names only the last req_id, even while an earlier one is still animating', async () => {
    const { actor, server } = await link({ egress: { type: 'agora', channelName: 'ch', token: 't', uid: 7 } }, { frameDelayMs: 300 });
    actor.send({ type: 'motion.audio', pcm: speech(0.4), sampleRate: 16000, end: true }); // ended, drained signal still queued
    actor.send({ type: 'motion.audio', pcm: speech(0.4), sampleRate: 16000, end: false }); // the reply being spoken
    actor.send({ type: 'motion.interrupt' });
    await until(() => actor.getSnapshot().matches({ live: 'ready' }), 2000, 'the interrupt ack');
    await sleep(50);
    expect(server.stats.interrupts).toBe(1);
  });

  it("interruptMode 'client_interrupt' on own transport: the server stops the request and sends nothing more", async () => {
    const { actor, events, server } = await link({ interruptMode: 'client_interrupt' }, { frameDelayMs: 200 });
    actor.send({ type: 'motion.audio', pcm: speech(1), sampleRate: 16000, end: false });
    await until(() => events.some((e) => e.type === 'motion.frames'), 2000, 'frames');
    actor.send({ type: 'motion.interrupt' });
    await until(() => events.some((e) => e.type === 'motion.interrupted'), 2000, 'motion.interrupted');
    const sent = server.stats.animationMessages;
    await sleep(400);
    expect(server.stats.interrupts).toBe(1);
    expect(server.stats.animationMessages).toBe(sent);
  });

  it('interruptMode picks the wire message; an unknown mode is a config_invalid error', () => {
    expect(interruptVia({})).toBe('end_request');
    expect(interruptVia({ egress: { type: 'agora', channelName: 'c', token: 't', uid: 1 } })).toBe('client_interrupt');
    expect(interruptVia({ interruptMode: 'end_request', egress: { type: 'agora', channelName: 'c', token: 't', uid: 1 } })).toBe('end_request');
    expect(interruptVia({ interruptMode: 'client_interrupt' })).toBe('client_interrupt');
    expect(() => interruptVia({ interruptMode: 'loud' as never })).toThrow(expect.objectContaining({ code: 'config_invalid', field: 'interruptMode' }));
  });
});
