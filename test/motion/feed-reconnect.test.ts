/**
 * One conversation per reply even when the Motion Server connection drops in the middle of it: the
 * link reconnects and sends the rest of the reply under a new req_id, but the client (AvatarKit)
 * must see one conversation id on all of the reply's audio and frames. Real VoiceServer, the local
 * Motion Server with its drop fault, a real WebSocket client; the TTS streams in real time so the
 * reply is still speaking when the link comes back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { decodeMessage, type MotionMessage } from '../../src/motion/protocol/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { delay, RawClient } from '../server/helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

type Animation = Extract<MotionMessage, { type: 'server.responseAnimation' }>;

const REPLY = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ') + '.';
const NEXT = 'and a second reply after that.';

describe('AvatarKit feed across a Motion Server reconnect', () => {
  it('a reply whose Motion connection dropped midway keeps one conversation id on its audio and frames; the next reply gets a new one', async () => {
    const motion = new LocalMotionServer();
    const info = await motion.start({ apiKey: 'k', appId: 'app-1', avatars: ['avatar-1'] });
    cleanup.push(() => motion.stop());
    // The first connection drops after 5 animation frames (of the first reply); the next one holds.
    motion.setFaults({ dropAfterFrames: { frames: 5, times: 1 } });
    let turn = 0;
    const server = new VoiceServer({
      port: 0,
      vad: false,
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new FakeLlm({ respond: () => [turn++ === 0 ? REPLY : NEXT] }),
        // 120 ms of audio per word, a chunk every 40 ms: the 3.6 s reply streams over ~1.5 s.
        tts: new FakeTts({ msPerWord: 120, chunkIntervalMs: 40 }),
      },
      motion: {
        apiKey: 'k',
        appId: 'app-1',
        avatarId: 'avatar-1',
        consoleEndpointUrl: info.consoleEndpointUrl,
        ingressEndpointUrl: info.ingressEndpointUrl,
        reconnect: { baseDelayMs: 50, maxDelayMs: 100, maxAttempts: 3 },
      },
    });
    const { url } = await server.start();
    cleanup.push(() => server.stop());
    const client = new RawClient(url);
    cleanup.push(() => client.close());
    await client.hello();
    await delay(300); // the link connects

    client.send({ type: 'user.text', text: 'talk for a while' });
    await client.next('reply.done', () => true, 15_000);
    await delay(1500); // the frames of the audio sent after the reconnect
    const first = client.messages.filter((m) => m.type === 'avatar.audio' || m.type === 'avatar.frames');
    const reqIds = new Set(
      first.filter((m) => m.type === 'avatar.frames').flatMap((m) => (m['frames'] as string[]).map((b64) => (decodeMessage(new Uint8Array(Buffer.from(b64, 'base64'))) as Animation).reqId)),
    );
    // The drop happened mid-reply: its frames came under two req_ids ...
    expect(reqIds.size).toBe(2);
    // ... but the client saw one conversation, on the audio and on every frame.
    const conversations = new Set(first.map((m) => m['conversationId']));
    expect(conversations.size).toBe(1);
    expect(first.filter((m) => m.type === 'avatar.frames' && m['isLast'] === true).length).toBe(1);

    const before = first.length;
    client.send({ type: 'user.text', text: 'again' });
    await client.next('reply.done', (m) => m['text'] === NEXT, 15_000);
    await client.next('avatar.frames', (m) => m['isLast'] === true && !conversations.has(m['conversationId']), 10_000);
    const second = client.messages.filter((m) => m.type === 'avatar.audio' || m.type === 'avatar.frames').slice(before);
    const next = new Set(second.map((m) => m['conversationId']));
    expect(next.size).toBe(1);
    expect(conversations.has([...next][0])).toBe(false);
  });
});
