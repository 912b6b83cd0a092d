import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { VoxError } from '../../src/errors.js';
import { WebSocketAudioTransport, type AudioSocket, type TransportClosedInfo } from '../../src/transport/index.js';

interface Harness {
  server: WebSocketServer;
  client: WebSocket;
  transport: WebSocketAudioTransport;
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function connect(options: { sampleRate: number; maxBufferedBytes?: number } = { sampleRate: 16_000 }): Promise<Harness> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of server.clients) socket.terminate();
        server.close(() => resolve());
      }),
  );
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const accepted = new Promise<WebSocketAudioTransport>((resolve) => {
    server.once('connection', (socket) => {
      const transport = new WebSocketAudioTransport(socket, options);
      // What the server's gateway does: binary frames go to the transport, text stays with the protocol.
      socket.on('message', (data, isBinary) => {
        if (isBinary) transport.receive(data);
      });
      resolve(transport);
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  cleanups.push(() => client.terminate());
  await once(client, 'open');
  const transport = await accepted;
  cleanups.push(() => transport.close());
  return { server, client, transport };
}

function ramp(length: number, start = 0): Int16Array {
  return Int16Array.from({ length }, (_, i) => ((start + i * 257) % 65_536) - 32_768);
}

describe('WebSocketAudioTransport', () => {
  it('delivers binary PCM16 from the client to onAudio listeners at the negotiated rate', async () => {
    const { client, transport } = await connect({ sampleRate: 24_000 });
    const received: Array<[Int16Array, number]> = [];
    transport.onAudio((pcm, rate) => received.push([pcm, rate]));
    const frame = ramp(480);
    client.send(Buffer.from(frame.buffer));
    client.send(Buffer.from(ramp(480, 7).buffer));
    await expect.poll(() => received.length).toBe(2);
    expect(received[0]?.[1]).toBe(24_000);
    expect(Array.from(received[0]?.[0] ?? [])).toEqual(Array.from(frame));
    expect(transport.inputFormat).toEqual({ sampleRate: 24_000, channels: 1 });
    expect(transport.stats.framesIn).toBe(2);
  });

  it('sends outbound frames to the client as little-endian PCM16 binary messages, in order', async () => {
    const { client, transport } = await connect();
    const frames: Buffer[] = [];
    client.on('message', (data, isBinary) => {
      if (isBinary) frames.push(data as Buffer);
    });
    const sent = [ramp(320, 1), ramp(320, 2), ramp(320, 3)];
    for (const frame of sent) transport.sendAudio(frame);
    sent[0]?.fill(0); // the caller may reuse its buffer right away
    await expect.poll(() => frames.length).toBe(3);
    expect(frames[0]?.readInt16LE(0)).toBe(ramp(1, 1)[0]);
    expect(frames[2]?.readInt16LE(2)).toBe(ramp(2, 3)[1]);
    expect(transport.outputSampleRate).toBe(16_000);
    expect(transport.outputFrameSamples).toBe(320);
  });

  it('rejects an odd-length frame with audio_invalid_format, reported and not thrown, and keeps working', async () => {
    const { client, transport } = await connect();
    const errors: VoxError[] = [];
    const audio: Int16Array[] = [];
    transport.onError((error) => errors.push(error));
    transport.onAudio((pcm) => audio.push(pcm));
    client.send(Buffer.alloc(641));
    client.send(Buffer.from(ramp(320).buffer));
    await expect.poll(() => audio.length).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: 'AudioFormatError', code: 'audio_invalid_format' });
    expect(transport.stats.invalidFrames).toBe(1);
    expect(client.readyState).toBe(WebSocket.OPEN);
  });

  it('a listener that throws does not stop the others or the transport', async () => {
    const { client, transport } = await connect();
    const seen: number[] = [];
    transport.onAudio(() => {
      throw new Error('consumer bug');
    });
    transport.onAudio((pcm) => seen.push(pcm.length));
    client.send(Buffer.from(ramp(160).buffer));
    client.send(Buffer.from(ramp(160).buffer));
    await expect.poll(() => seen).toEqual([160, 160]);
  });

  it('reports playback progress routed by the server and stops after an unsubscribe', async () => {
    const { transport } = await connect();
    const progress: number[] = [];
    const off = transport.onPlaybackProgress((p) => progress.push(p.playedMs));
    transport.reportPlaybackProgress({ replyId: 'r1', playedMs: 120 });
    off();
    transport.reportPlaybackProgress({ replyId: 'r1', playedMs: 240 });
    expect(progress).toEqual([120]);
  });

  it('reports closed once when the client disconnects, and close() is idempotent', async () => {
    const { client, transport } = await connect();
    const closed: TransportClosedInfo[] = [];
    transport.onClosed((info) => closed.push(info));
    client.close();
    await expect.poll(() => closed.length).toBe(1);
    expect(closed[0]?.reason).toBe('remote');
    await transport.close();
    await transport.close();
    expect(transport.closed).toBe(true);
    expect(closed).toHaveLength(1);
    transport.sendAudio(ramp(320)); // no-op after close, no throw
  });
});

describe('WebSocketAudioTransport backpressure', () => {
  /** A socket whose send buffer the test controls. */
  function stubSocket(): AudioSocket & { sent: Buffer[]; bufferedAmount: number; flush(): void } {
    const pending: Array<() => void> = [];
    const stub = {
      readyState: 1,
      bufferedAmount: 0,
      sent: [] as Buffer[],
      send(data: Buffer, _options: unknown, callback: (error?: Error) => void) {
        stub.sent.push(data);
        stub.bufferedAmount += data.byteLength;
        pending.push(() => {
          stub.bufferedAmount -= data.byteLength;
          callback();
        });
      },
      once: () => stub,
      off: () => stub,
      flush() {
        for (const done of pending.splice(0)) done();
      },
    };
    return stub as unknown as AudioSocket & { sent: Buffer[]; bufferedAmount: number; flush(): void };
  }

  it('queues while the socket is backed up, drops the oldest frames beyond the queue limit and counts them', () => {
    const socket = stubSocket();
    const transport = new WebSocketAudioTransport(socket, { sampleRate: 16_000, maxBufferedBytes: 1000, maxQueuedFrames: 3 });
    for (let i = 0; i < 10; i++) transport.sendAudio(new Int16Array(320).fill(i)); // 640 bytes each
    // Two frames fit under 1000 bytes of socket buffer; of the other eight only the newest three are kept.
    expect(socket.sent.map((frame) => frame.readInt16LE(0))).toEqual([0, 1]);
    expect(transport.stats).toMatchObject({ framesOut: 2, droppedFrames: 5, queuedFrames: 3 });
    socket.flush();
    socket.flush();
    expect(socket.sent.map((frame) => frame.readInt16LE(0))).toEqual([0, 1, 7, 8, 9]);
    expect(transport.stats.queuedFrames).toBe(0);
    void transport.close();
  });
});
