/**
 * WebRTC transports in worker threads (WebRtcWorkerPool): real worker threads running werift and
 * Opus, real werift peers on loopback, the main thread on the other side of the proxy.
 */
import { createMetrics } from '../../src/observability/metrics.js';
import { Encoder } from '@evan/opus';
import { BroadcastChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { RtpHeader, RtpPacket } from 'werift';
import type { VoxError } from '../../src/errors.js';
import { RtpSequencer } from '../../src/protocol/index.js';
import type { TransportClosedInfo } from '../../src/transport/index.js';
import { WebRtcWorkerPool, type WebRtcWorkerPoolOptions } from '../../src/transport/webrtc-pool.js';
import type { WebRtcWorkerTransport } from '../../src/transport/webrtc-worker-transport.js';
import { clientPeer, connect, type ClientPeer } from './peer.js';
import { amplitudeAt, concat, rms, toneFrames } from './tone.js';
import { CRASH_CHANNEL, type CrashRequest } from './worker-crash-probe.js';

const LOOPBACK = { hostAddresses: ['127.0.0.1'], connectTimeoutMs: 20_000 } as const;
const CRASH_PROBE = new URL('./worker-crash-probe.ts', import.meta.url);
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function pool(options: WebRtcWorkerPoolOptions = {}): WebRtcWorkerPool {
  const created = new WebRtcWorkerPool({ workers: 2, ...options });
  cleanups.push(() => created.close());
  return created;
}

function peer(): ClientPeer {
  const created = clientPeer();
  cleanups.push(() => created.close());
  return created;
}

/** A transport of `workers` connected to a fresh peer. */
async function connected(workers: WebRtcWorkerPool, options = {}): Promise<{ transport: WebRtcWorkerTransport; peer: ClientPeer }> {
  const transport = workers.createTransport({ ...LOOPBACK, ...options });
  cleanups.push(() => transport.close());
  const client = peer();
  await connect(transport, client);
  return { transport, peer: client };
}

/** The peer sends a 1 kHz tone, the main thread echoes every inbound frame: what the peer hears back. */
async function echoedTone(transport: WebRtcWorkerTransport, client: ClientPeer): Promise<{ server: Int16Array[]; client: Int16Array }> {
  const server: Int16Array[] = [];
  const off = transport.onAudio((pcm) => {
    server.push(pcm.slice());
    transport.sendAudio(pcm);
  });
  const before = client.received.length;
  await client.sendTone(toneFrames(1000, 8000, 40));
  await expect.poll(() => client.received.length - before, { timeout: 5000 }).toBeGreaterThanOrEqual(35);
  off();
  return { server, client: concat(client.decoded().slice(before)) };
}

function expectTone(pcm: Int16Array): void {
  const window = pcm.subarray(4800, 4800 + 14_400); // skip codec warm-up, analyse 300 ms
  expect(window.length).toBe(14_400);
  const at1k = amplitudeAt(window, 1000);
  expect(rms(window)).toBeGreaterThan(2500);
  expect(at1k).toBeGreaterThan(5000);
  expect(amplitudeAt(window, 1300)).toBeLessThan(at1k * 0.1);
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('WebRtcWorkerTransport (werift + Opus in a worker thread)', () => {
  it.each([false, true])('trickle=%s: negotiates through the worker and a 1 kHz tone goes there and back; the counters cross in stats', async (trickle) => {
    const workers = pool();
    const transport = workers.createTransport(LOOPBACK);
    cleanups.push(() => transport.close());
    const client = peer();
    const { pc } = client;
    let answered = false;
    let overtook = false;
    const candidates: Array<string | null> = [];
    if (trickle) {
      transport.onIceCandidate((candidate) => {
        if (!answered) overtook = true;
        candidates.push(candidate?.candidate ?? null);
        void pc.addIceCandidate(candidate?.candidate == null ? null : { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? '0', sdpMLineIndex: candidate.sdpMLineIndex ?? 0 });
      });
      pc.onIceCandidate.subscribe((candidate) => void transport.addIceCandidate(candidate === undefined ? null : candidate.toJSON()));
    }
    const offer = await pc.createOffer();
    let offerSdp = offer.sdp; // trickle: sent before gathering
    if (!trickle) {
      await pc.setLocalDescription(offer);
      offerSdp = pc.localDescription?.sdp ?? '';
    }
    const answering = transport.handleOffer(offerSdp, { trickle }).then((sdp) => {
      answered = true; // where the server sends webrtc.answer
      return sdp;
    });
    if (trickle) await pc.setLocalDescription(offer);
    const answer = await answering;
    expect(answer.includes('a=candidate:')).toBe(!trickle);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await transport.whenConnected();
    expect(transport.connectionState).toBe('connected');
    if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((state) => state === 'connected');

    const { server, client: heard } = await echoedTone(transport, client);
    expect(server.every((frame) => frame.length === 960)).toBe(true);
    expectTone(concat(server));
    expectTone(heard);
    if (trickle) {
      expect(overtook).toBe(false);
      expect(candidates.at(-1)).toBeNull();
      expect(candidates[0]).toMatch(/127\.0\.0\.1/);
    }
    await expect.poll(() => transport.stats.packetsIn).toBe(40);
    expect(transport.stats).toMatchObject({ packetsLost: 0, concealedFrames: 0, packetsLate: 0, decodeErrors: 0, droppedFrames: 0, framesCleared: 0 });
    await expect.poll(() => transport.stats.packetsOut).toBe(server.length);
    expect(workers.workers.map((w) => w.sessions).sort()).toEqual([0, 1]);
  });

  it('rejects a bad offer with ProtocolError from the worker and stays usable', async () => {
    const transport = pool().createTransport(LOOPBACK);
    cleanups.push(() => transport.close());
    await expect(transport.handleOffer('garbage')).rejects.toMatchObject({ name: 'ProtocolError', code: 'protocol_invalid_message' });
    await expect(transport.addIceCandidate({ candidate: 'nonsense', sdpMid: '0' })).rejects.toMatchObject({ name: 'ProtocolError', code: 'protocol_invalid_message' });
    expect(transport.closed).toBe(false);
    const client = peer();
    await client.pc.setLocalDescription(await client.pc.createOffer());
    await expect(transport.handleOffer(client.pc.localDescription?.sdp ?? '')).resolves.toContain('m=audio');
  });

  it("inbound loss, reordering and lateness: the worker's jitter buffer conceals and reorders, and its stats read through the proxy", async () => {
    const { transport, peer: client } = await connected(pool());
    const heard: Int16Array[] = [];
    transport.onAudio((pcm) => void heard.push(pcm.slice()));
    // A lossy path: 10, 25 and 26 never arrive; 16 overtakes 15; 35 comes 200 ms late.
    const encoder = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
    const sequencer = new RtpSequencer();
    const payloadType = client.transceiver.sender.codec?.payloadType ?? 96;
    const packets = toneFrames(1000, 8000, 50).map((frame) => {
      const stamp = sequencer.next(frame.length, performance.now());
      return new RtpPacket(new RtpHeader({ ...stamp, payloadType }), Buffer.from(encoder.encode(frame)));
    });
    const send = (i: number) => client.transceiver.sender.sendRtp(packets[i] as RtpPacket);
    for (let i = 0; i < 50; i++) {
      if (![10, 15, 25, 26, 35].includes(i)) await send(i);
      if (i === 16) await send(15);
      if (i === 45) await send(35);
      await settle(20);
    }
    await expect.poll(() => heard.length, { timeout: 3000 }).toBe(50);
    await settle(200);
    // Every 20 ms slot became audio on the main thread, the lost ones concealed in the worker.
    expect(heard).toHaveLength(50);
    expect(heard.every((frame) => frame.length === 960)).toBe(true);
    await expect.poll(() => transport.stats).toMatchObject({ packetsIn: 47, packetsLost: 4, concealedFrames: 4, packetsReordered: 1, packetsLate: 1 });
    // The same counts reach /metrics: read at the scrape, and not counted twice by a second scrape or the close.
    const metrics = createMetrics();
    const untrack = metrics.trackWebRtc(transport);
    const counts = async (): Promise<Record<string, number>> => {
      const text = await metrics.scrape();
      return Object.fromEntries([...text.matchAll(/^voxstate_webrtc_inbound_total\{event="(\w+)"\} (\d+)$/gm)].map((m) => [m[1] as string, Number(m[2])]));
    };
    expect(await counts()).toEqual({ lost: 4, late: 1, reordered: 1, concealed: 4 });
    expect(await counts()).toEqual({ lost: 4, late: 1, reordered: 1, concealed: 4 });
    untrack();
    expect(await counts()).toEqual({ lost: 4, late: 1, reordered: 1, concealed: 4 });
    expect(transport.stats.jitterDepthMs).toBeGreaterThanOrEqual(20);
    expect(rms(heard[10] as Int16Array)).toBeGreaterThan(500); // concealment continues the tone
  });

  it('reports a wrong-size outbound frame through onError at once instead of throwing', () => {
    const transport = pool().createTransport(LOOPBACK);
    cleanups.push(() => transport.close());
    const errors: VoxError[] = [];
    transport.onError((error) => errors.push(error));
    transport.sendAudio(new Int16Array(100));
    expect(errors[0]).toMatchObject({ name: 'AudioFormatError', code: 'audio_invalid_format' });
  });
});

describe('clearOutput across the worker boundary', () => {
  /** Packets of reply A then reply B as the peer got them: B starts at the last talkspurt marker. */
  function split(client: ClientPeer): { a: number; b: number; firstB: Buffer | undefined } {
    const firstB = client.received.findLastIndex((packet) => packet.marker);
    return { a: firstB, b: client.received.length - firstB, firstB: client.received[firstB]?.payload };
  }

  it('frames handed in the same turn as the cancel never reach the socket (clearWaitMs 0): all withdrawn, counted, and reply B starts as a fresh Opus stream with the RTP marker', async () => {
    const { transport, peer: client } = await connected(pool({ workers: 1, clearWaitMs: 0 }));
    const replyA = toneFrames(1000, 8000, 10);
    const replyB = toneFrames(440, 8000, 10);
    for (const frame of replyA) transport.sendAudio(frame);
    expect(transport.clearOutput()).toBe(10);
    expect(transport.clearOutput()).toBe(0); // idempotent
    for (const frame of replyB) transport.sendAudio(frame);
    await expect.poll(() => client.received.length, { timeout: 3000 }).toBe(10);
    await settle(300);
    expect(client.received).toHaveLength(10); // nothing of reply A, ever
    expect(split(client)).toMatchObject({ a: 0, b: 10 });
    expect(transport.stats).toMatchObject({ framesCleared: 10, packetsOut: 10, droppedFrames: 0 });
    const fresh = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
    fresh.bitrate = 32_000;
    expect(client.received[0]?.payload.equals(Buffer.from(fresh.encode(replyB[0] as Int16Array)))).toBe(true);
  });

  it('while frames are crossing to the worker (clearWaitMs 0), each frame is sent or withdrawn, never both: the peer gets exactly the frames not withdrawn, reply A stops before reply B', async () => {
    const { transport, peer: client } = await connected(pool({ workers: 1, clearWaitMs: 0 }));
    const replyA = toneFrames(1000, 8000, 250);
    for (const frame of replyA) transport.sendAudio(frame);
    // The batch is posted; give the worker a moment into it, so the cancel usually lands mid-batch
    // (the assertions hold wherever it lands).
    await new Promise((resolve) => setImmediate(resolve));
    for (const until = performance.now() + 3; performance.now() < until; );
    const withdrawn = transport.clearOutput();
    for (const frame of toneFrames(440, 8000, 10)) transport.sendAudio(frame);
    const expected = 250 - withdrawn + 10;
    await expect.poll(() => client.received.length, { timeout: 5000 }).toBe(expected);
    await settle(300);
    expect(client.received).toHaveLength(expected);
    expect(split(client)).toMatchObject({ a: 250 - withdrawn, b: 10 });
    expect(transport.stats).toMatchObject({ framesCleared: withdrawn, packetsOut: expected });
  });

  it('with the default wait, frames handed before the cancel are sent before clearOutput returns or withdrawn and counted: what the playout counted as played is what the peer gets', async () => {
    const { transport, peer: client } = await connected(pool({ workers: 1 }));
    // A reply that has been playing for a while (the worker's send path is warm), then the cancel
    // right after the playout handed its latest frames.
    for (const frame of toneFrames(1000, 8000, 20)) transport.sendAudio(frame);
    await expect.poll(() => client.received.length, { timeout: 3000 }).toBe(20);
    for (const frame of toneFrames(1000, 8000, 3)) transport.sendAudio(frame);
    const withdrawn = transport.clearOutput();
    for (const frame of toneFrames(440, 8000, 10)) transport.sendAudio(frame);
    await expect.poll(() => client.received.length, { timeout: 3000 }).toBe(33 - withdrawn);
    await settle(300);
    expect(split(client)).toMatchObject({ a: 23 - withdrawn, b: 10 });
    expect(transport.stats).toMatchObject({ framesCleared: withdrawn, packetsOut: 33 - withdrawn });
  });

  it('returns 0 before connecting and after close, and never throws', async () => {
    const transport = pool().createTransport(LOOPBACK);
    expect(transport.clearOutput()).toBe(0);
    transport.sendAudio(new Int16Array(960)); // not connected: the worker drops it, or clearOutput withdraws it
    const withdrawn = transport.clearOutput();
    expect(withdrawn).toBeLessThanOrEqual(1);
    expect(transport.stats.framesCleared).toBe(withdrawn);
    await transport.close();
    expect(transport.clearOutput()).toBe(0);
  });
});

describe('a worker that dies ends only its own sessions', () => {
  const crash = (threadId: number, how: CrashRequest['how']): void => {
    const channel = new BroadcastChannel(CRASH_CHANNEL);
    channel.postMessage({ threadId, how } satisfies CrashRequest);
    channel.close();
  };

  it.each(['throw', 'exit', 'terminate'] as const)('worker %s: its session closes with transport_failed, the other worker\'s session keeps talking, and a fresh worker takes new sessions', async (how) => {
    const workers = pool({ preload: [CRASH_PROBE] });
    const doomed = await connected(workers);
    const survivor = await connected(workers);
    const deadThread = doomed.transport.workerThreadId;
    expect(survivor.transport.workerThreadId).not.toBe(deadThread);
    expectTone((await echoedTone(survivor.transport, survivor.peer)).client);

    const closed: TransportClosedInfo[] = [];
    doomed.transport.onClosed((info) => closed.push(info));
    const connectedAgain = doomed.transport.whenConnected(); // already connected: resolves
    await connectedAgain;
    if (how === 'terminate') await workers.terminateWorker(deadThread);
    else crash(deadThread, how);

    await expect.poll(() => closed.length, { timeout: 5000 }).toBe(1);
    expect(closed[0]).toMatchObject({ reason: 'failed', error: { name: 'TransportError', code: 'transport_failed' } });
    expect(doomed.transport.closed).toBe(true);
    doomed.transport.sendAudio(new Int16Array(960)); // a dead transport takes frames without throwing
    expect(doomed.transport.clearOutput()).toBe(0);
    await doomed.transport.close();
    await expect(doomed.transport.handleOffer('v=0')).rejects.toMatchObject({ code: 'session_invalid_state' });

    // The other worker's session never noticed.
    expect(survivor.transport.closed).toBe(false);
    expectTone((await echoedTone(survivor.transport, survivor.peer)).client);

    // The dead worker was replaced; the next session goes to the new one (it has the fewest).
    await expect.poll(() => workers.workers.map((w) => w.threadId).includes(deadThread)).toBe(false);
    expect(workers.workers).toHaveLength(2);
    const next = await connected(workers);
    expect([deadThread, survivor.transport.workerThreadId]).not.toContain(next.transport.workerThreadId);
    expectTone((await echoedTone(next.transport, next.peer)).client);
  });
});

describe('WebRtcWorkerPool', () => {
  it('balances sessions over its workers, close() closes its transports once, and a closed pool refuses new ones', async () => {
    const workers = pool({ workers: 2 });
    const transports = [1, 2, 3, 4].map(() => workers.createTransport(LOOPBACK));
    expect(workers.workers.map((w) => w.sessions)).toEqual([2, 2]);
    const reasons: string[] = [];
    for (const transport of transports) transport.onClosed((info) => reasons.push(info.reason));
    await transports[0]?.close();
    await transports[0]?.close();
    expect(workers.workers.map((w) => w.sessions).sort()).toEqual([1, 2]);
    await workers.close();
    expect(reasons).toEqual(['closed', 'closed', 'closed', 'closed']);
    expect(workers.workers).toEqual([]);
    expect(() => workers.createTransport(LOOPBACK)).toThrow(expect.objectContaining({ code: 'transport_failed' }));
  });

  it('refuses a worker count that is not a positive integer', () => {
    expect(() => new WebRtcWorkerPool({ workers: 0 })).toThrow(expect.objectContaining({ code: 'config_invalid', field: 'webrtc.workers' }));
    expect(() => new WebRtcWorkerPool({ workers: 1.5 })).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });
});
