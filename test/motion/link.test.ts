import { afterEach, describe, expect, it } from 'vitest';
import { createActor, type Actor } from 'xstate';
import type { MotionLinkOutput } from '../../machines/motion-link.js';
import { MotionError } from '../../src/motion/errors.js';
import { avatarFrames, feedFromMotion } from '../../src/motion/feed.js';
import { createMotionLinkActor, type MotionLinkLogic, type MotionLinkOptions } from '../../src/motion/link.js';
import { decodeMessage, peekEnvelope, type MotionFaults } from '../../src/motion/index.js';
import { sleep, speech, startServer, until, type Harness } from './helpers.js';

let harness: Harness | undefined;

function motionErrorOf(event: MotionLinkOutput | undefined): MotionError {
  if (event?.type !== 'motion.error' || !(event.error instanceof MotionError)) throw new Error('expected a motion.error with a MotionError');
  return event.error;
}
const actors: Array<Actor<MotionLinkLogic>> = [];

afterEach(async () => {
  for (const actor of actors.splice(0)) actor.stop();
  await harness?.server.stop();
  harness = undefined;
});

async function link(faults: MotionFaults = {}, overrides: Partial<MotionLinkOptions> = {}) {
  harness = await startServer({ faults });
  const logic = createMotionLinkActor({
    ...harness.clientOptions(),
    reconnect: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
    ...overrides,
  });
  const actor = createActor(logic, { input: {} });
  actors.push(actor);
  const events: MotionLinkOutput[] = [];
  actor.on('*', (event) => events.push(event as MotionLinkOutput));
  actor.start();
  const states = () => events.filter((e) => e.type === 'motion.state').map((e) => e.state);
  const value = () => {
    const v = actor.getSnapshot().value;
    return typeof v === 'string' ? v : Object.values(v)[0];
  };
  return { actor, events, states, value, server: harness.server };
}

describe('createMotionLinkActor against the local Motion Server', () => {
  it('relays a reply: audio and frames share the conversation id, frames are the raw envelopes, end once', async () => {
    const { actor, events, value } = await link();
    await until(() => value() === 'ready');
    const tts = speech(1, 24000); // TTS at 24 kHz → resampled to the Motion Server's 16 kHz
    actor.send({ type: 'motion.audio', pcm: tts.subarray(0, 12000), sampleRate: 24000, end: false });
    expect(value()).toBe('streaming');
    actor.send({ type: 'motion.audio', pcm: tts.subarray(12000), sampleRate: 24000, end: true });
    await until(() => value() === 'ready');

    const audio = events.filter((e) => e.type === 'motion.audio');
    const frames = events.filter((e) => e.type === 'motion.frames');
    const conversationIds = new Set([...audio, ...frames].map((e) => e.conversationId));
    expect(conversationIds.size).toBe(1);
    expect(audio.reduce((n, e) => n + e.pcm.length, 0)).toBe(16000);
    expect(audio.every((e) => e.sampleRate === 16000)).toBe(true);
    expect(audio.at(-1)?.isLast).toBe(true);
    expect(frames.filter((e) => e.isLast)).toHaveLength(1);
    const keyframes = frames.reduce((n, e) => n + e.frames.reduce((k, f) => k + (peekEnvelope(f).animation?.keyframeCount ?? 0), 0), 0);
    expect(keyframes).toBe(25);
    for (const event of frames) {
      for (const envelope of event.frames) expect(decodeMessage(envelope)).toMatchObject({ type: 'server.responseAnimation', reqId: event.conversationId });
    }
    const feed = feedFromMotion(frames[0] as MotionLinkOutput);
    expect(feed).toEqual(avatarFrames(frames[0] as Extract<MotionLinkOutput, { type: 'motion.frames' }>));
  });

  it('motion.interrupt mid-reply: motion.interrupted, back to ready, no frames of that reply afterwards', async () => {
    const { actor, events, value } = await link({ frameDelayMs: 60 });
    await until(() => value() === 'ready');
    const audio = speech(2);
    for (let offset = 0; offset < 16000 * 0.5; offset += 640) {
      actor.send({ type: 'motion.audio', pcm: audio.subarray(offset, offset + 640), sampleRate: 16000, end: false });
      await sleep(40);
    }
    actor.send({ type: 'motion.interrupt' });
    expect(value()).toBe('interrupting');
    await until(() => events.some((e) => e.type === 'motion.interrupted'));
    const ackIndex = events.length;
    expect(value()).toBe('ready');
    await sleep(150);
    expect(events.slice(ackIndex).filter((e) => e.type === 'motion.frames')).toHaveLength(0);
  });

  it.each([
    ['close 4002 (session timeout)', { closeAfterFrames: { frames: 2, code: 4002, times: 1 } }],
    ['close 4503 (upstream unavailable)', { closeAfterFrames: { frames: 2, code: 4503, times: 1 } }],
    ['a dropped connection', { dropAfterFrames: { frames: 2, times: 1 } }],
  ] as const)('%s: reconnecting → ready on a fresh connection', async (_name, faults) => {
    const { actor, events, states, value, server } = await link(faults);
    await until(() => value() === 'ready');
    actor.send({ type: 'motion.audio', pcm: speech(1), sampleRate: 16000, end: true });
    await until(() => states().includes('reconnecting'));
    await until(() => value() === 'ready' && states().filter((s) => s === 'ready').length === 2);
    expect(states()).toEqual(['connecting', 'ready', 'streaming', 'reconnecting', 'connecting', 'ready']);
    const error = events.find((e) => e.type === 'motion.error');
    expect(error).toMatchObject({ fatal: false });
    expect(server.stats.connections).toBe(2);
  });

  it.each([
    [4001, 'credits_exhausted'],
    [4003, 'concurrency_limit'],
    [4010, 'auth_failed'],
  ] as const)('close %i: failed, with a fatal motion.error (%s)', async (code, reason) => {
    const { events, value, server } = await link({ closeAfterFrames: { frames: 0, code } });
    await until(() => value() === 'failed');
    const error = events.find((e) => e.type === 'motion.error');
    expect(error).toMatchObject({ fatal: true });
    expect(motionErrorOf(error)).toMatchObject({ closeCode: code, reason });
    await sleep(100);
    expect(server.stats.connections).toBe(1);
  });

  it('a refused upgrade 401 (token expired) retries with a fresh token and reaches ready', async () => {
    const { states, value, server } = await link({ refuseUpgrade: { status: 401, times: 1 } });
    await until(() => value() === 'ready');
    expect(states()).toEqual(['connecting', 'reconnecting', 'connecting', 'ready']);
    expect(server.stats.tokensIssued).toBe(2);
  });

  it.each([
    [400, 'token_invalid'],
    [402, 'billing_required'],
    [404, 'app_unrecognized'],
  ] as const)('a refused upgrade %i: failed (%s)', async (status, reason) => {
    const { events, value } = await link({ refuseUpgrade: { status } });
    await until(() => value() === 'failed');
    const error = events.find((e) => e.type === 'motion.error');
    expect(motionErrorOf(error)).toMatchObject({ status, reason, phase: 'connect' });
  });

  it('a wrong API key fails at the token exchange (auth): failed', async () => {
    const { events, value } = await link({}, { apiKey: 'not-the-key' });
    await until(() => value() === 'failed');
    expect(motionErrorOf(events.find((e) => e.type === 'motion.error'))).toMatchObject({ phase: 'token', status: 401 });
  });

  it('a retryable failure that persists uses up the attempts and ends in failed', async () => {
    const { value, server, states } = await link({ refuseUpgrade: { status: 503 } });
    await until(() => value() === 'failed', 3000);
    expect(states().filter((s) => s === 'reconnecting')).toHaveLength(3);
    expect(server.stats.refusedUpgrades).toBe(4);
  });

  it('egress mode: no frames or audio to relay, one isLast per reply', async () => {
    const { actor, events, value } = await link({}, { egress: { type: 'agora', channelName: 'ch', token: 't', uid: 7 } });
    await until(() => value() === 'ready');
    actor.send({ type: 'motion.audio', pcm: speech(0.5), sampleRate: 16000, end: true });
    await until(() => value() === 'ready' && events.some((e) => e.type === 'motion.frames'));
    await sleep(50);
    const frames = events.filter((e) => e.type === 'motion.frames');
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ frames: [], isLast: true });
    expect(events.some((e) => e.type === 'motion.audio')).toBe(false);
    expect(feedFromMotion(frames[0] as MotionLinkOutput)).toBeUndefined();
  });

  it('motion.close closes the socket and ends the actor', async () => {
    const { actor, value, server } = await link();
    await until(() => value() === 'ready');
    actor.send({ type: 'motion.close' });
    expect(actor.getSnapshot().status).toBe('done');
    await until(() => server.connectionCount === 0);
  });
});
