import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { VoxError } from '../../src/errors.js';
import { WebSocketAudioTransport, type AudioSocket, type TransportClosedInfo } from '../../src/transport/index.js';

interface Harness {
  server: WebSocketServer;
  client: WebSocket;
  /** The server's end of the connection, the socket the transport writes to. */
  serverSocket: WebSocket;
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
  const accepted = new Promise<[WebSocketAudioTransport, WebSocket]>((resolve) => {
    server.once('connection', (socket) => {
      const transport = new WebSocketAudioTransport(socket, options);
      // What the server's gateway does: binary frames go to the transport, text stays with the protocol.
      socket.on('message', (data, isBinary) => {
        if (isBinary) transport.receive(data);
      });
      resolve([transport, socket]);
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  cleanups.push(() => client.terminate());
  await once(client, 'open');
  const [transport, serverSocket] = await accepted;
  cleanups.push(() => transport.close());
  return { server, client, serverSocket, transport };
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

  it('delivers the same samples whatever the frame\'s byte offset in its buffer (aligned: no copy; odd: copied)', async () => {
    const { transport } = await connect();
    const received: Int16Array[] = [];
    transport.onAudio((pcm) => received.push(pcm));
    const frame = ramp(320, 3);
    const bytes = new Uint8Array(frame.buffer);
    const aligned = Buffer.alloc(2 + 640);
    aligned.set(bytes, 2);
    const odd = Buffer.alloc(1 + 640);
    odd.set(bytes, 1);
    transport.receive(aligned.subarray(2));
    transport.receive(odd.subarray(1));
    expect(received.map((pcm) => Array.from(pcm))).toEqual([Array.from(frame), Array.from(frame)]);
    expect(received[0]?.buffer).toBe(aligned.buffer); // a view of the message
    expect(received[1]?.buffer).not.toBe(odd.buffer);
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

describe('WebSocketAudioTransport backpressure', () => {
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

  it.each([16_000, 48_000])(
    'by default at most 3 frames (60 ms) sit in the socket buffer at %i Hz; the rest queue, oldest dropped beyond 50',
    (sampleRate) => {
      const socket = stubSocket();
      const transport = new WebSocketAudioTransport(socket, { sampleRate });
      const frameBytes = transport.outputFrameSamples * 2;
      for (let i = 0; i < 60; i++) transport.sendAudio(new Int16Array(transport.outputFrameSamples).fill(i));
      expect(socket.sent.map((frame) => frame.readInt16LE(0))).toEqual([0, 1, 2]);
      expect(socket.bufferedAmount).toBe(3 * frameBytes);
      expect(transport.stats).toMatchObject({ framesOut: 3, queuedFrames: 50, droppedFrames: 7, clearedFrames: 0 });
      socket.flush();
      expect(socket.sent.map((frame) => frame.readInt16LE(0))).toEqual([0, 1, 2, 10, 11, 12]);
      void transport.close();
    },
  );
});

describe('WebSocketAudioTransport clearOutput', () => {
  it('drops the queued frames and returns how many, counted as clearedFrames apart from droppedFrames; the cleared frames are never sent', () => {
    const socket = stubSocket();
    const transport = new WebSocketAudioTransport(socket, { sampleRate: 16_000, maxQueuedFrames: 5 });
    for (let i = 0; i < 10; i++) transport.sendAudio(new Int16Array(320).fill(i)); // 3 sent, 5 queued, 2 dropped
    expect(transport.clearOutput()).toBe(5);
    expect(transport.stats).toMatchObject({ framesOut: 3, queuedFrames: 0, droppedFrames: 2, clearedFrames: 5 });
    expect(transport.clearOutput()).toBe(0); // idempotent
    transport.sendAudio(new Int16Array(320).fill(100));
    socket.flush();
    socket.flush();
    expect(socket.sent.map((frame) => frame.readInt16LE(0))).toEqual([0, 1, 2, 100]);
    expect(transport.stats).toMatchObject({ framesOut: 4, queuedFrames: 0, droppedFrames: 2, clearedFrames: 5 });
    void transport.close();
  });

  it('returns 0 with nothing queued, and after close (frames queued at close included) without throwing', async () => {
    const socket = stubSocket();
    const transport = new WebSocketAudioTransport(socket, { sampleRate: 16_000 });
    expect(transport.clearOutput()).toBe(0);
    for (let i = 0; i < 5; i++) transport.sendAudio(new Int16Array(320));
    expect(transport.stats.queuedFrames).toBe(2);
    await transport.close();
    expect(transport.clearOutput()).toBe(0);
    expect(transport.clearOutput()).toBe(0);
    expect(transport.stats).toMatchObject({ queuedFrames: 0, clearedFrames: 0 });
  });

  it('a client that stops reading: no frame still queued at clearOutput ever arrives, the next reply does, in order, and at most 3 cancelled frames were beyond recall in ws', async () => {
    const { client, serverSocket, transport } = await connect();
    const samples = transport.outputFrameSamples;
    const wireBytes = samples * 2 + 4; // + ws header of an unmasked 126–65 535-byte binary frame
    const [A, B] = [1, 2];
    // Sample 0 says which reply, samples 1–2 the frame's index within it.
    const frame = (reply: number, index: number): Int16Array => {
      const pcm = new Int16Array(samples);
      pcm[0] = reply;
      pcm[1] = index & 0x7fff;
      pcm[2] = index >> 15;
      return pcm;
    };
    const received: Array<{ reply: number; index: number }> = [];
    client.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const bytes = data as Buffer;
      received.push({ reply: bytes.readInt16LE(0), index: bytes.readInt16LE(2) + bytes.readInt16LE(4) * 0x8000 });
    });

    client.pause(); // stops reading the TCP socket: the kernel's buffers fill, then ws's, then the transport's queue
    let sentA = 0;
    let maxBuffered = 0;
    const sendA = (): void => {
      transport.sendAudio(frame(A, sentA++));
      maxBuffered = Math.max(maxBuffered, serverSocket.bufferedAmount);
    };
    while (transport.stats.queuedFrames === 0) {
      if (sentA > 200_000) throw new Error('the socket never backed up');
      sendA();
      await new Promise((resolve) => setImmediate(resolve)); // let pending writes complete if they can
    }
    for (let i = 0; i < 20; i++) sendA(); // 21 queued: below maxQueuedFrames, so nothing dropped
    const atClear = { ...transport.stats, bufferedAmount: serverSocket.bufferedAmount };
    expect(atClear).toMatchObject({ queuedFrames: 21, droppedFrames: 0, framesOut: sentA - 21 });

    expect(transport.clearOutput()).toBe(21);
    expect(transport.stats).toMatchObject({ queuedFrames: 0, clearedFrames: 21, droppedFrames: 0, framesOut: atClear.framesOut });
    for (let i = 0; i < 10; i++) transport.sendAudio(frame(B, i));
    client.resume();

    await expect.poll(() => received.filter((f) => f.reply === B).length, { timeout: 15_000 }).toBe(10);
    const replyA = received.filter((f) => f.reply === A);
    // Exactly the A frames handed to socket.send() before the clear, in order: none of the queued ones.
    expect(replyA).toHaveLength(atClear.framesOut);
    expect(replyA.every((f, i) => f.index === i)).toBe(true);
    expect(replyA.some((f) => f.index >= atClear.framesOut)).toBe(false);
    expect(received.slice(replyA.length)).toEqual(Array.from({ length: 10 }, (_, index) => ({ reply: B, index })));
    // Of those, the ones in ws's own buffer when the reply was cancelled: at most 3 frames (60 ms).
    const inWsBuffer = Math.ceil(atClear.bufferedAmount / wireBytes);
    expect(inWsBuffer).toBeGreaterThan(0);
    expect(inWsBuffer).toBeLessThanOrEqual(3);
    expect(maxBuffered).toBeLessThanOrEqual(3 * wireBytes);
  }, 30_000);
});
