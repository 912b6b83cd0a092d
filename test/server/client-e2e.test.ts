/**
 * The Node client SDK against a real VoiceServer on loopback: fixture speech streamed at real-time
 * speed over WebSocket audio and over WebRTC (werift on both ends, Opus both ways), real Silero
 * VAD; only STT/LLM/TTS are fakes.
 */
import * as werift from 'werift';
import { afterEach, describe, expect, it } from 'vitest';
import { connectWebRtc, VoxClient } from '../../src/client/index.js';
import { Resampler } from '../../src/audio/resampler.js';
import { float32ToInt16, int16ToFloat32 } from '../../src/audio/frame.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { fixture, streamRealtime } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function startServer(): Promise<{ url: string; llm: FakeLlm }> {
  const llm = new FakeLlm({ respond: () => ['Sure. A table for two tomorrow at seven.'] });
  const server = new VoiceServer({
    port: 0,
    providers: { stt: new FakeStt({ recognize: () => 'book a table for two tomorrow at seven' }), llm, tts: new FakeTts({ msPerWord: 120 }) },
    webrtcHostAddresses: ['127.0.0.1'],
  });
  const { url } = await server.start();
  cleanup.push(() => server.stop());
  return { url, llm };
}

function collect(client: VoxClient): { types: string[]; text: () => string } {
  const types: string[] = [];
  let final = '';
  client.on('message', (m) => {
    types.push(m.type);
    if (m.type === 'transcript.final') final = m.text;
  });
  return { types, text: () => final };
}

function waitFor(client: VoxClient, type: 'reply.done', timeoutMs = 20_000): Promise<{ text: string; interrupted: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type}`)), timeoutMs);
    const off = client.on('message', (m) => {
      if (m.type === type) {
        clearTimeout(timer);
        off();
        resolve(m);
      }
    });
  });
}

describe('client SDK ↔ VoiceServer', () => {
  it('WebSocket audio: a fixture WAV streamed at real time gives speech_start, transcript.final, reply.* and agent audio', async () => {
    const { url } = await startServer();
    const client = new VoxClient({ url, audio: { transport: 'websocket', sampleRate: 16000 }, heartbeatMs: 0 });
    cleanup.push(() => client.close());
    const seen = collect(client);
    let audioSamples = 0;
    client.on('audio', (a) => {
      audioSamples += a.pcm.length;
    });
    await client.connect();
    const done = waitFor(client, 'reply.done');
    const { pcm, sampleRate } = fixture('booking.16k.wav');
    await streamRealtime((frame) => client.sendPcm(frame), pcm, sampleRate, 1000);
    expect(await done).toEqual(expect.objectContaining({ text: 'Sure. A table for two tomorrow at seven.', interrupted: false }));
    for (const type of ['vad.speech_start', 'vad.speech_end', 'transcript.final', 'reply.delta', 'reply.audio_start', 'reply.audio_end', 'reply.done']) {
      expect(seen.types).toContain(type);
    }
    expect(seen.text()).toBe('book a table for two tomorrow at seven');
    // 8 words × 120 ms of agent speech at 16 kHz.
    expect(audioSamples).toBe(8 * 0.12 * 16_000);
  });

  it('WebRTC (werift, Opus both ways): 48 kHz speech is detected and the agent audio arrives over RTP', async () => {
    const { url } = await startServer();
    const client = new VoxClient({ url, audio: { transport: 'webrtc', sampleRate: 48000 }, heartbeatMs: 0 });
    cleanup.push(() => client.close());
    const seen = collect(client);
    await client.connect();
    const link = await connectWebRtc(client, { werift, hostAddresses: ['127.0.0.1'] });
    cleanup.push(() => link.close());
    let energy = 0;
    let received = 0;
    link.onAudio((pcm) => {
      received += pcm.length;
      for (const s of pcm) energy += s * s;
    });
    const done = waitFor(client, 'reply.done');
    const { pcm: pcm16k } = fixture('booking.16k.wav');
    // The client's microphone runs at 48 kHz.
    const up = new Resampler(16_000, 48_000);
    const pcm48k = float32ToInt16(up.process(int16ToFloat32(pcm16k)).slice());
    up.close();
    await streamRealtime((frame) => link.sendPcm(frame), pcm48k, 48_000, 1000);
    expect((await done).interrupted).toBe(false);
    expect(seen.types).toContain('vad.speech_start');
    expect(seen.text()).toBe('book a table for two tomorrow at seven');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Most of the 0.96 s reply made it over RTP, and it is not silence.
    expect(received).toBeGreaterThan(0.8 * 0.96 * 48_000);
    expect(Math.sqrt(energy / received)).toBeGreaterThan(300);
  });
});
