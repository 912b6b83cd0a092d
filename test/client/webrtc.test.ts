import * as opus from '@evan/opus';
import { afterEach, describe, expect, it } from 'vitest';
import * as werift from 'werift';
import { WebSocket } from 'ws';
import { VoxClient, connectWebRtc, type WebRtcAudioLink } from '../../src/client/index.js';
import { amplitudeAt, concat, rms, toneFrames } from '../transport/tone.js';
import { startProtocolServer } from './protocol-server.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function connectedClient(): Promise<VoxClient> {
  const server = await startProtocolServer();
  cleanups.push(() => server.close());
  const client = new VoxClient({
    url: server.url,
    audio: { transport: 'webrtc', sampleRate: 48_000 },
    heartbeatMs: 0,
    WebSocket: WebSocket,
  });
  cleanups.push(() => client.close());
  await client.connect();
  return client;
}

async function echoTone(link: WebRtcAudioLink): Promise<Int16Array> {
  const heard: Int16Array[] = [];
  link.onAudio((pcm, rate) => {
    if (rate === 48_000) heard.push(pcm);
  });
  for (const frame of toneFrames(1000, 8000, 40)) {
    expect(link.sendPcm(frame)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await expect.poll(() => heard.length, { timeout: 3000 }).toBeGreaterThanOrEqual(35);
  return concat(heard).subarray(4800, 4800 + 14_400);
}

describe('connectWebRtc (client SDK, werift in Node)', () => {
  it.each([true, false])('trickle=%s: negotiates through the protocol and hears its 1 kHz tone echoed back', async (trickle) => {
    const client = await connectedClient();
    const link = await connectWebRtc(client, { werift, opus, trickle, hostAddresses: ['127.0.0.1'] });
    cleanups.push(() => link.close());
    const pcm = await echoTone(link);
    const at1k = amplitudeAt(pcm, 1000);
    expect(rms(pcm)).toBeGreaterThan(2500);
    expect(at1k).toBeGreaterThan(5000);
    expect(amplitudeAt(pcm, 1300)).toBeLessThan(at1k * 0.1);
    expect(link.sendPcm(new Int16Array(100))).toBe(false); // not an Opus frame size
  });

  it('refuses a client whose session negotiated websocket audio', async () => {
    const server = await startProtocolServer();
    cleanups.push(() => server.close());
    const client = new VoxClient({ url: server.url, audio: { transport: 'websocket', sampleRate: 16_000 }, heartbeatMs: 0, WebSocket });
    cleanups.push(() => client.close());
    await client.connect();
    await expect(connectWebRtc(client, { werift, opus })).rejects.toMatchObject({ code: 'session_invalid_state' });
  });
});
