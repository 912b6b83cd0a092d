/**
 * OGG_OPUS on the avatar path: the link encodes the TTS audio to one Ogg Opus stream per req_id,
 * the local Motion Server demuxes and decodes it and animates it as it does PCM, and the client feed
 * carries the same Ogg bytes as avatar.audio. End to end through VoiceServer, against a PCM run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { concatBytes } from '../../src/audio/ogg.js';
import { OggOpusReader, OggOpusWriter } from '../../src/audio/ogg-opus.js';
import { MotionClient } from '../../src/motion/client/index.js';
import type { MotionError } from '../../src/motion/errors.js';
import { createMotionLinkActor, type MotionLinkOptions } from '../../src/motion/link.js';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { decodeMessage } from '../../src/motion/protocol/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { RawClient, type Received } from '../server/helpers.js';
import { sleep, speech, startServer, until } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const REPLY = 'one two three four five six seven eight nine ten.'; // 2 s of speech

/** One reply through VoiceServer with the given link options: what the client received. */
async function reply(motionOptions: Partial<MotionLinkOptions>): Promise<{ frames: Received[]; audio: Received[]; errors: Received[] }> {
  const motion = new LocalMotionServer();
  const info = await motion.start({ apiKey: 'test-key', appId: 'app-1', avatars: ['avatar-1'] });
  cleanup.push(() => motion.stop());
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [REPLY] }), tts: new FakeTts({ msPerWord: 200 }) },
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
  client.send({ type: 'user.text', text: 'count' });
  await client.next('reply.done');
  await client.next('avatar.frames', (m) => m['isLast'] === true, 5000);
  return { frames: client.of('avatar.frames'), audio: client.of('avatar.audio'), errors: client.of('error') };
}

/** jaw_pose[0] of every keyframe in the feed, in order. */
function jaw(frames: Received[]): number[] {
  const out: number[] = [];
  for (const message of frames) {
    for (const frame of message['frames'] as string[]) {
      const decoded = decodeMessage(new Uint8Array(Buffer.from(frame, 'base64')));
      if (decoded.type !== 'server.responseAnimation') throw new Error(`unexpected ${decoded.type}`);
      for (const keyframe of decoded.keyframes) out.push(keyframe.jawPose[0] ?? 0);
    }
  }
  return out;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

describe('OGG_OPUS through VoiceServer', () => {
  it('a reply animates like PCM: 25 fps of frames that follow the speech, one conversation id, avatar.audio is the Ogg stream', async () => {
    const pcm = await reply({});
    const ogg = await reply({ audioFormat: 'ogg_opus' });
    expect(ogg.errors).toEqual([]);

    const ids = new Set([...ogg.frames, ...ogg.audio].map((m) => m['conversationId']));
    expect(ids.size).toBe(1);
    expect(ogg.frames.filter((m) => m['isLast'] === true)).toHaveLength(1);
    const pcmJaw = jaw(pcm.frames);
    const oggJaw = jaw(ogg.frames);
    // Same audio time → the same number of keyframes (Opus is trimmed to the exact length).
    expect(oggJaw.length).toBeGreaterThanOrEqual(49);
    expect(Math.abs(oggJaw.length - pcmJaw.length)).toBeLessThanOrEqual(1);
    // The mouth moves with the speech, about as much as from the PCM (Opus is lossy, not silent).
    expect(Math.max(...oggJaw)).toBeGreaterThan(0.1);
    expect(mean(oggJaw)).toBeGreaterThan(mean(pcmJaw) * 0.7);
    expect(mean(oggJaw)).toBeLessThan(mean(pcmJaw) * 1.3);

    // avatar.audio: the Ogg pages as sent; joined, one stream that decodes to the reply's 2 s.
    const bytes = concatBytes(ogg.audio.map((m) => new Uint8Array(Buffer.from(String(m['audio']), 'base64'))));
    expect(Buffer.from(bytes.subarray(0, 4)).toString('latin1')).toBe('OggS');
    const reader = new OggOpusReader({ sampleRate: 16000 });
    const decoded = reader.push(bytes);
    expect(reader.ended).toBe(true);
    expect(decoded.length / 16000).toBeCloseTo(2, 1);
    expect(ogg.audio.at(-1)?.['isLast']).toBe(true);
  });
});

describe('the local Motion Server with OGG_OPUS', () => {
  it('animates an Ogg Opus request; a broken stream is ServerError 3 for that req_id', async () => {
    const harness = await startServer();
    cleanup.push(() => harness.server.stop());
    const client = new MotionClient(harness.clientOptions({ audioFormat: 'ogg_opus' }));
    cleanup.push(() => client.close());
    await client.connect();
    const keyframes = new Map<string, number>();
    const ended = new Set<string>();
    const errors: MotionError[] = [];
    client.on('animation', (a) => {
      keyframes.set(a.reqId, (keyframes.get(a.reqId) ?? 0) + a.keyframeCount);
      if (a.end) ended.add(a.reqId);
    });
    client.on('error', (error) => errors.push(error));

    const writer = new OggOpusWriter({ sampleRate: 16000 });
    const audio = speech(1);
    let reqId = '';
    for (let offset = 0; offset < audio.length; offset += 320 * 5) reqId = client.sendAudio(writer.push(audio.subarray(offset, offset + 320 * 5)), false);
    client.sendAudio(writer.end(), true);
    await until(() => ended.has(reqId), 3000, 'the end of the request');
    expect(keyframes.get(reqId)).toBe(25);

    const broken = client.sendAudio(new TextEncoder().encode('this is not an Ogg stream'), false);
    await until(() => errors.length > 0, 3000, 'a ServerError');
    expect(errors[0]).toMatchObject({ serverCode: 3, reqId: broken, reason: 'server_error' });
    expect(errors[0]?.message).toMatch(/Ogg/);
  });

  it('ogg_opus at a rate Opus does not encode is refused when the link or the client is made', () => {
    const options = { apiKey: 'k', appId: 'a', avatarId: 'v', ingressEndpointUrl: 'ws://127.0.0.1:1/x', consoleEndpointUrl: 'http://127.0.0.1:1/x', audioFormat: 'ogg_opus', sampleRate: 22050 } as const;
    const refused = expect.objectContaining({ code: 'config_invalid', field: 'sampleRate' });
    expect(() => createMotionLinkActor(options)).toThrow(refused);
    expect(() => new MotionClient(options)).toThrow(refused);
    expect(() => new MotionClient({ ...options, audioFormat: 'mp3' as never, sampleRate: 16000 })).toThrow(expect.objectContaining({ field: 'audioFormat' }));
  });
});
