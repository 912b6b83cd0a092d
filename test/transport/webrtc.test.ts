import { Decoder, Encoder } from '@evan/opus';
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { RTCPeerConnection, RtpHeader, RtpPacket, useOPUS, type RTCRtpTransceiver } from 'werift';
import type { VoxError } from '../../src/errors.js';
import { RtpSequencer } from '../../src/protocol/index.js';
import { WebRtcTransport, type IceCandidateInit } from '../../src/transport/index.js';
import { amplitudeAt, concat, rms, toneFrames } from './tone.js';

const LOOPBACK = { hostAddresses: ['127.0.0.1'] } as const;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function serverTransport(rates: { inputSampleRate?: 16_000 | 48_000; outputSampleRate?: 16_000 | 48_000 } = {}): WebRtcTransport {
  const transport = new WebRtcTransport({ ...LOOPBACK, connectTimeoutMs: 10_000, ...rates });
  cleanups.push(() => transport.close());
  return transport;
}

/** A bare werift peer playing the browser: it offers one sendrecv Opus track. */
interface ClientPeer {
  pc: RTCPeerConnection;
  transceiver: RTCRtpTransceiver;
  /** Receives every inbound RTP packet (the track appears during setRemoteDescription, before tests look). */
  onRtp: (rtp: RtpPacket) => void;
}

function clientPeer(): ClientPeer {
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: { audio: [useOPUS()], video: [] },
  });
  cleanups.push(() => pc.close());
  const transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const peer: ClientPeer = { pc, transceiver, onRtp: () => {} };
  pc.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => peer.onRtp(rtp)));
  return peer;
}

/** Server echoes what it hears; the client sends a tone and records what comes back. */
async function toneRoundTrip(peer: ClientPeer, transport: WebRtcTransport) {
  const { pc, transceiver } = peer;
  const heardByServer: Int16Array[] = [];
  const rates = new Set<number>();
  transport.onAudio((pcm, rate) => {
    rates.add(rate);
    heardByServer.push(pcm);
    transport.sendAudio(pcm);
  });
  const decoder = new Decoder({ channels: 1, sample_rate: 48_000 });
  const heardByClient: Int16Array[] = [];
  const markers: boolean[] = [];
  peer.onRtp = (rtp) => {
    markers.push(rtp.header.marker);
    const bytes = decoder.decode(rtp.payload);
    heardByClient.push(new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
  };
  await transport.whenConnected();
  if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((state) => state === 'connected');

  const encoder = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
  const sequencer = new RtpSequencer();
  const frames = toneFrames(1000, 8000, 40);
  for (const frame of frames) {
    const stamp = sequencer.next(frame.length, performance.now());
    const header = new RtpHeader({ ...stamp, payloadType: transceiver.sender.codec?.payloadType ?? 96 });
    await transceiver.sender.sendRtp(new RtpPacket(header, Buffer.from(encoder.encode(frame))));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await expect.poll(() => heardByClient.length, { timeout: 3000 }).toBeGreaterThanOrEqual(35);
  expect([...rates]).toEqual([transport.inputFormat.sampleRate]);
  return { heardByServer, heardByClient, markers };
}

function expectTone(frames: Int16Array[]): void {
  const pcm = concat(frames).subarray(4800, 4800 + 14_400); // skip codec warm-up, analyse 300 ms
  expect(pcm.length).toBe(14_400);
  const at1k = amplitudeAt(pcm, 1000);
  expect(rms(pcm)).toBeGreaterThan(2500);
  expect(at1k).toBeGreaterThan(5000); // sent at 8000
  expect(amplitudeAt(pcm, 1300)).toBeLessThan(at1k * 0.1);
  expect(amplitudeAt(pcm, 700)).toBeLessThan(at1k * 0.1);
}

describe('WebRtcTransport (werift ↔ werift on loopback)', () => {
  it('non-trickle: a complete offer gets a complete answer and a 1 kHz tone goes there and back', async () => {
    const transport = serverTransport();
    const peer = clientPeer();
    const { pc } = peer;
    await pc.setLocalDescription(await pc.createOffer());
    const offer = pc.localDescription?.sdp ?? '';
    expect(offer).toContain('a=candidate:');

    const answer = await transport.handleOffer(offer);
    expect(answer).toMatch(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
    expect(answer).not.toMatch(/192\.0\.2|0\.0\.0\.0 \d+ typ/);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });

    const { heardByServer, heardByClient, markers } = await toneRoundTrip(peer, transport);
    expectTone(heardByServer);
    expectTone(heardByClient);
    expect(heardByServer.every((frame) => frame.length === 960)).toBe(true);
    expect(markers[0]).toBe(true);
    expect(markers.slice(1).filter(Boolean).length).toBeLessThanOrEqual(1);
    expect(transport.stats.packetsIn).toBe(40);
    expect(transport.stats.packetsLost).toBe(0);
  });

  it('at 16 kHz PCM (what VAD and STT take) Opus decodes and encodes natively; the wire stays 48 kHz Opus', async () => {
    const transport = serverTransport({ inputSampleRate: 16_000, outputSampleRate: 16_000 });
    const peer = clientPeer();
    const { pc } = peer;
    await pc.setLocalDescription(await pc.createOffer());
    await pc.setRemoteDescription({ type: 'answer', sdp: await transport.handleOffer(pc.localDescription?.sdp ?? '') });
    const { heardByServer, heardByClient } = await toneRoundTrip(peer, transport);
    expect(heardByServer.every((frame) => frame.length === 320)).toBe(true);
    const server = concat(heardByServer).subarray(1600, 1600 + 4800);
    expect(amplitudeAt(server, 1000, 16_000)).toBeGreaterThan(5000);
    expect(amplitudeAt(server, 1300, 16_000)).toBeLessThan(amplitudeAt(server, 1000, 16_000) * 0.1);
    expectTone(heardByClient); // the client decodes the echo at 48 kHz: the RTP clock was right
  });

  it('trickle: candidates travel separately in both directions and the tone still goes there and back', async () => {
    const transport = serverTransport();
    const peer = clientPeer();
    const { pc } = peer;
    const serverCandidates: Array<IceCandidateInit | null> = [];
    let answered = false;
    let overtook = false;
    transport.onIceCandidate((candidate) => {
      if (!answered) overtook = true;
      serverCandidates.push(candidate);
      void pc.addIceCandidate(
        candidate?.candidate == null ? null : { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? '0', sdpMLineIndex: candidate.sdpMLineIndex ?? 0 },
      );
    });
    pc.onIceCandidate.subscribe((candidate) => {
      void transport.addIceCandidate(candidate === undefined ? null : candidate.toJSON());
    });

    const offer = await pc.createOffer();
    expect(offer.sdp).not.toContain('a=candidate:');
    const answerPromise = transport.handleOffer(offer.sdp, { trickle: true }).then((sdp) => {
      answered = true; // where a server would send webrtc.answer
      return sdp;
    });
    await pc.setLocalDescription(offer);
    const answer = await answerPromise;
    expect(answer).not.toContain('a=candidate:');
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });

    const { heardByServer, heardByClient } = await toneRoundTrip(peer, transport);
    expectTone(heardByServer);
    expectTone(heardByClient);
    expect(overtook).toBe(false); // candidates never overtake the answer
    expect(serverCandidates.at(-1)).toBeNull();
    expect(serverCandidates[0]?.candidate).toMatch(/127\.0\.0\.1/);
  });

  it.each([
    ['garbage', 'garbage'],
    ['an empty string', ''],
    ['no audio section', 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'],
  ])('rejects %s as an offer with ProtocolError and stays usable', async (_name, sdp) => {
    const transport = serverTransport();
    await expect(transport.handleOffer(sdp)).rejects.toMatchObject({ name: 'ProtocolError', code: 'protocol_invalid_message' });
    expect(transport.closed).toBe(false);
    await expect(transport.addIceCandidate({ candidate: 'nonsense', sdpMid: '0' })).rejects.toMatchObject({
      code: 'protocol_invalid_message',
    });

    const { pc } = clientPeer();
    await pc.setLocalDescription(await pc.createOffer());
    await expect(transport.handleOffer(pc.localDescription?.sdp ?? '')).resolves.toContain('m=audio');
  });

  it('inbound loss, reordering and lateness: the jitter buffer plays in order, conceals what is lost, drops what is too late, and keeps the audio timeline', async () => {
    const transport = serverTransport();
    const peer = clientPeer();
    const { pc, transceiver } = peer;
    await pc.setLocalDescription(await pc.createOffer());
    await pc.setRemoteDescription({ type: 'answer', sdp: await transport.handleOffer(pc.localDescription?.sdp ?? '') });
    const heard: Int16Array[] = [];
    transport.onAudio((pcm) => void heard.push(pcm));
    await transport.whenConnected();
    if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((state) => state === 'connected');

    // A lossy path: 10, 25 and 26 never arrive; 16 overtakes 15; 35 comes 200 ms late.
    const encoder = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
    const sequencer = new RtpSequencer();
    const packets = toneFrames(1000, 8000, 50).map((frame) => {
      const stamp = sequencer.next(frame.length, performance.now());
      return new RtpPacket(new RtpHeader({ ...stamp, payloadType: transceiver.sender.codec?.payloadType ?? 96 }), Buffer.from(encoder.encode(frame)));
    });
    const send = (i: number) => transceiver.sender.sendRtp(packets[i] as RtpPacket);
    for (let i = 0; i < 50; i++) {
      if (i === 10 || i === 25 || i === 26 || i === 35 || i === 15) {
        // (15 goes out right after 16, below; 35 after 45)
      } else await send(i);
      if (i === 16) await send(15);
      if (i === 45) await send(35);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await expect.poll(() => heard.length, { timeout: 3000 }).toBe(50);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Every 20 ms slot became audio, the lost ones concealed: the stream time the VAD counts is kept.
    expect(heard).toHaveLength(50);
    expect(heard.every((frame) => frame.length === 960)).toBe(true);
    expect(transport.stats).toMatchObject({ packetsIn: 47, packetsLost: 4, concealedFrames: 4, packetsReordered: 1, packetsLate: 1 });
    // Around the overtaking packets the tone is clean: they were decoded in order.
    const reordered = concat(heard.slice(12, 22));
    const at1k = amplitudeAt(reordered, 1000);
    expect(at1k).toBeGreaterThan(5000);
    expect(amplitudeAt(reordered, 1300)).toBeLessThan(at1k * 0.1);
    // Concealed slots carry the decoder's continuation of the tone, not silence or garbage.
    expect(rms(heard[10] as Int16Array)).toBeGreaterThan(500);
  });

  it('reports a wrong-size outbound frame through onError instead of throwing', () => {
    const transport = serverTransport();
    const errors: VoxError[] = [];
    transport.onError((error) => errors.push(error));
    transport.sendAudio(new Int16Array(100));
    expect(errors[0]).toMatchObject({ code: 'audio_invalid_format' });
  });

  it('clearOutput returns 0 before connecting and after close, and never throws', async () => {
    const transport = serverTransport();
    expect(transport.clearOutput()).toBe(0);
    transport.sendAudio(new Int16Array(960)); // dropped: not connected
    expect(transport.clearOutput()).toBe(0);
    expect(transport.clearOutput()).toBe(0);
    await transport.close();
    expect(transport.clearOutput()).toBe(0);
  });

  it('clearOutput on a live call: nothing is queued (every frame reaches the UDP socket inside sendAudio), and the next reply starts as a fresh Opus stream with the RTP marker', async () => {
    const transport = serverTransport();
    const peer = clientPeer();
    const { pc } = peer;
    const packets: Array<{ marker: boolean; payload: Buffer }> = [];
    peer.onRtp = (rtp) => packets.push({ marker: rtp.header.marker, payload: Buffer.from(rtp.payload) });
    await pc.setLocalDescription(await pc.createOffer());
    await pc.setRemoteDescription({ type: 'answer', sdp: await transport.handleOffer(pc.localDescription?.sdp ?? '') });
    await transport.whenConnected();
    if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((state) => state === 'connected');

    const replyA = toneFrames(1000, 8000, 10);
    const replyB = toneFrames(440, 8000, 10);
    // Count the datagrams handed to Node's UDP sockets while sendAudio runs (a pass-through spy): no
    // other code can run inside this synchronous loop, so every send is one of these frames.
    const proto = dgram.Socket.prototype;
    const send = proto.send;
    let datagrams = 0;
    proto.send = function (this: dgram.Socket, ...args: unknown[]) {
      datagrams++;
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as typeof send;
    try {
      for (const frame of replyA) transport.sendAudio(frame);
    } finally {
      proto.send = send;
    }
    expect(datagrams).toBe(replyA.length);

    expect(transport.clearOutput()).toBe(0);
    expect(transport.clearOutput()).toBe(0);
    for (const frame of replyB) transport.sendAudio(frame);
    expect(transport.stats).toMatchObject({ packetsOut: 20, droppedFrames: 0 });

    await expect.poll(() => packets.length, { timeout: 3000 }).toBe(20);
    const firstB = packets.findLastIndex((packet) => packet.marker);
    expect(firstB).toBe(10);
    // The first packet of reply B is byte for byte what a new encoder makes of that frame: nothing of
    // reply A (the encoder's look-ahead, its predictors) leaks into it.
    const fresh = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
    fresh.bitrate = 32_000;
    const continued = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
    continued.bitrate = 32_000;
    for (const frame of replyA) continued.encode(frame);
    const firstFrameB = replyB[0] ?? new Int16Array(960);
    expect(packets[firstB]?.payload.equals(Buffer.from(fresh.encode(firstFrameB)))).toBe(true);
    expect(packets[firstB]?.payload.equals(Buffer.from(continued.encode(firstFrameB)))).toBe(false); // the check can tell
  });

  it('close() is idempotent and reports closed once', async () => {
    const transport = serverTransport();
    const reasons: string[] = [];
    transport.onClosed((info) => reasons.push(info.reason));
    await Promise.all([transport.close(), transport.close()]);
    await transport.close();
    expect(reasons).toEqual(['closed']);
    await expect(transport.whenConnected()).rejects.toMatchObject({ code: 'session_invalid_state' });
  });
});
