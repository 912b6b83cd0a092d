/**
 * The AvatarKit feed contract, end to end: a VoiceServer with a Motion link to the local Motion
 * Server, a real WebSocket client, fake LLM/TTS. AvatarKit's host mode (docs/motion.md) has two
 * rules the feed must keep:
 *  1. one conversation id per reply: the audio and every frame of a reply carry the same id (the
 *     client drops frames tagged with another), and a new reply gets a new one;
 *  2. empty animation data switches that conversation to audio-only (later frames are ignored), so
 *     the feed never sends an `avatar.frames` with no envelopes for a reply that is animated.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { decodeMessage, type MotionMessage } from '../../src/motion/protocol/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { delay, RawClient, type Received } from '../server/helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function setup(replies: string[], keyframesPerMessage = 1): Promise<{ client: RawClient; motion: LocalMotionServer }> {
  const motion = new LocalMotionServer();
  const info = await motion.start({ apiKey: 'k', appId: 'app-1', avatars: ['avatar-1'], keyframesPerMessage });
  cleanup.push(() => motion.stop());
  let turn = 0;
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: {
      stt: new FakeStt({ recognize: () => '' }),
      llm: new FakeLlm({ respond: () => [replies[turn++ % replies.length] ?? 'ok.'] }),
      tts: new FakeTts({ msPerWord: 120 }),
    },
    motion: {
      apiKey: 'k',
      appId: 'app-1',
      avatarId: 'avatar-1',
      consoleEndpointUrl: info.consoleEndpointUrl,
      ingressEndpointUrl: info.ingressEndpointUrl,
      reconnect: { maxAttempts: 1 },
    },
  });
  const { url } = await server.start();
  cleanup.push(() => server.stop());
  const client = new RawClient(url);
  cleanup.push(() => client.close());
  await client.hello();
  await delay(300); // the link connects
  return { client, motion };
}

type Animation = Extract<MotionMessage, { type: 'server.responseAnimation' }>;

function envelopes(message: Received): Animation[] {
  return (message['frames'] as string[]).map((b64) => decodeMessage(new Uint8Array(Buffer.from(b64, 'base64'))) as Animation);
}

/** Runs one text turn and waits for its last avatar frame. */
async function turn(client: RawClient, text: string, replyIndex: number): Promise<void> {
  client.send({ type: 'user.text', text });
  await client.next('reply.done', () => true, 10_000);
  await client.next('avatar.frames', (m) => m['isLast'] === true && client.of('avatar.frames').filter((f) => f['isLast'] === true).indexOf(m) === replyIndex, 10_000);
}

describe('AvatarKit feed contract', () => {
  it('rule 1: one conversation id per reply, on its audio and on every frame (the envelopes carry it as req_id); the next reply gets a new one', async () => {
    const { client } = await setup(['one two three four five six.', 'seven eight nine ten eleven.']);
    await turn(client, 'first', 0);
    await turn(client, 'second', 1);

    const feed = client.messages.filter((m) => m.type === 'avatar.audio' || m.type === 'avatar.frames');
    // Split the feed at each reply's last frame.
    const replies: Received[][] = [[]];
    for (const message of feed) {
      replies.at(-1)?.push(message);
      if (message.type === 'avatar.frames' && message['isLast'] === true) replies.push([]);
    }
    const [first = [], second = [], rest = []] = replies;
    expect(rest).toEqual([]);
    const ids = [first, second].map((reply) => new Set(reply.map((m) => m['conversationId'])));
    expect(ids.map((set) => set.size)).toEqual([1, 1]);
    expect([...(ids[0] ?? [])][0]).not.toBe([...(ids[1] ?? [])][0]);
    for (const reply of [first, second]) {
      const id = reply[0]?.['conversationId'];
      // Audio first (AvatarKit's yieldAudioData starts the conversation), and audio on both sides of its frames.
      expect(reply[0]?.type).toBe('avatar.audio');
      expect(reply.some((m) => m.type === 'avatar.frames')).toBe(true);
      for (const message of reply.filter((m) => m.type === 'avatar.frames')) {
        for (const envelope of envelopes(message)) expect(envelope.reqId).toBe(id);
      }
      expect(reply.filter((m) => m.type === 'avatar.audio' && m['isLast'] === true)).toHaveLength(1);
    }
  });

  it.each([1, 5])(
    'rule 2: an animated reply never gets an avatar.frames with no envelopes, not even its last one (%i keyframes per envelope)',
    async (keyframesPerMessage) => {
      // 7 words at 120 ms: a length that leaves a partial batch for the end when batching by 5.
      const { client } = await setup(['alpha bravo charlie delta echo foxtrot golf.'], keyframesPerMessage);
      await turn(client, 'go', 0);
      const frames = client.of('avatar.frames');
      expect(frames.length).toBeGreaterThan(0);
      for (const message of frames) expect((message['frames'] as string[]).length).toBeGreaterThan(0);
      // The last message carries the end envelope itself, so the client sees end=true in the data it yields.
      const last = frames.at(-1);
      expect(last?.['isLast']).toBe(true);
      expect(envelopes(last as Received).at(-1)?.end).toBe(true);
      // And all the reply's keyframes arrive: 25 per second of its audio.
      const audioSeconds = client.of('avatar.audio').reduce((n, m) => n + Buffer.from(String(m['audio']), 'base64').length, 0) / 2 / 16_000;
      const keyframes = frames.flatMap(envelopes).reduce((n, e) => n + e.keyframes.length, 0);
      expect(Math.abs(keyframes - audioSeconds * 25)).toBeLessThanOrEqual(1);
    },
  );
});
