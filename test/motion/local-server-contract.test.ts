/**
 * The local Motion Server as the public Server SDK drives it (issue 15): odd-length audio chunks,
 * req_ids that already ended, bounded memory for tokens and finished req_ids, and a confirm that
 * holds only the public fields. Raw protobuf over a real loopback WebSocket, so every byte the
 * server sees is one the test chose.
 */
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { fetchSessionToken, MotionClient } from '../../src/motion/client/index.js';
import { MESSAGE_TYPE, decodeMessage, encodeMessage, type MotionMessage } from '../../src/motion/protocol/index.js';
import { API_KEY, APP_ID, AVATAR_ID, sleep, speech, startServer, until, type Harness } from './helpers.js';

let harness: Harness | undefined;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await harness?.server.stop();
  harness = undefined;
});

async function setup(options: Parameters<typeof startServer>[0] = {}): Promise<Harness> {
  harness = await startServer(options);
  return harness;
}

type Animation = Extract<MotionMessage, { type: 'server.responseAnimation' }>;
type ServerErrorMessage = Extract<MotionMessage, { type: 'server.error' }>;

interface RawSession {
  readonly socket: WebSocket;
  readonly messages: MotionMessage[];
  readonly raw: Uint8Array[];
  audio(reqId: string, bytes: Uint8Array, end: boolean): void;
  animations(reqId: string): Animation[];
  errors(): ServerErrorMessage[];
  ended(reqId: string): boolean;
}

/** A configured session on a raw socket (token, upgrade, configure, confirm), as the SDK opens one. */
async function rawSession(h: Harness): Promise<RawSession> {
  const token = await fetchSessionToken({ consoleUrl: h.info.consoleEndpointUrl, apiKey: API_KEY });
  const socket = new WebSocket(`${h.info.ingressEndpointUrl}/websocket?id=${AVATAR_ID}`, {
    headers: { 'X-App-ID': APP_ID, 'X-Session-Key': token },
    perMessageDeflate: false,
  });
  sockets.push(socket);
  const messages: MotionMessage[] = [];
  const raw: Uint8Array[] = [];
  socket.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    raw.push(bytes);
    messages.push(decodeMessage(bytes));
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(encodeMessage({ type: 'client.configureSession', sampleRate: 16000, audioFormat: 'pcm_s16le' }));
  await until(() => messages.some((m) => m.type === 'server.confirmSession'), 3000, 'confirm');
  const animations = (reqId: string): Animation[] =>
    messages.filter((m): m is Animation => m.type === 'server.responseAnimation' && m.reqId === reqId);
  return {
    socket,
    messages,
    raw,
    audio: (reqId, bytes, end) => socket.send(encodeMessage({ type: 'client.audioInput', reqId, end, audio: bytes })),
    animations,
    errors: () => messages.filter((m): m is ServerErrorMessage => m.type === 'server.error'),
    ended: (reqId) => animations(reqId).some((a) => a.end),
  };
}

function pcmBytes(pcm: Int16Array): Uint8Array {
  return new Uint8Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
}

/** Sends `bytes` as one request cut at `cuts` (byte offsets) on a fresh session; returns its keyframes. */
async function animateChunked(h: Harness, bytes: Uint8Array, chunkSizes: readonly number[]): Promise<Animation['keyframes']> {
  const session = await rawSession(h);
  const reqId = '20261202000000_chunkedAudio';
  let offset = 0;
  let index = 0;
  while (offset < bytes.length) {
    const size = chunkSizes[index % chunkSizes.length] ?? 1;
    session.audio(reqId, bytes.subarray(offset, offset + size), false);
    offset += size;
    index += 1;
  }
  session.audio(reqId, new Uint8Array(0), true);
  await until(() => session.ended(reqId), 10_000, 'end of the chunked request');
  session.socket.close();
  return session.animations(reqId).flatMap((a) => a.keyframes);
}

describe('local Motion Server: audio chunks of any byte length', () => {
  // 0.4 s of speech: 10 keyframes, 12 800 bytes.
  const audio = pcmBytes(speech(0.4));

  it('a chunk with an odd byte count keeps its last byte for the next chunk: 1-byte, 3-byte and 4095-byte chunks animate exactly like one whole chunk', async () => {
    const h = await setup();
    const whole = await animateChunked(h, audio, [audio.length]);
    expect(whole).toHaveLength(10);
    // The jaw moves with this audio; a misaligned stream (every sample's bytes swapped) would not match it.
    expect(Math.max(...whole.map((k) => k.jawPose[0] ?? 0))).toBeGreaterThan(0.1);
    for (const size of [1, 3, 4095]) {
      expect(await animateChunked(h, audio, [size]), `chunks of ${size} bytes`).toEqual(whole);
    }
  });

  it('property: any chunking of the same audio, odd sizes included (1…4095 bytes), animates exactly like one whole chunk', async () => {
    const h = await setup();
    const whole = await animateChunked(h, audio, [audio.length]);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 4095 }), { minLength: 1, maxLength: 12 }), async (sizes) => {
        expect(await animateChunked(h, audio, sizes)).toEqual(whole);
      }),
      { numRuns: 25 },
    );
  });
});

describe('local Motion Server: a req_id that already ended', () => {
  it('is refused with SERVER_ERROR 3 "req_id … already ended", is never animated again and gets no second end=true', async () => {
    const h = await setup();
    const session = await rawSession(h);
    const reqId = '20261202000000_endedOnce-_a';
    session.audio(reqId, pcmBytes(speech(0.2)), true);
    await until(() => session.ended(reqId), 3000, 'first end');
    const animated = session.animations(reqId).length;

    session.audio(reqId, pcmBytes(speech(0.2)), false);
    session.audio(reqId, new Uint8Array(0), true);
    await until(() => session.errors().length >= 2, 3000, 'refusals');
    // A request that follows shows the server has handled everything sent before it.
    session.audio('20261202000000_nextRequest1', pcmBytes(speech(0.1)), true);
    await until(() => session.ended('20261202000000_nextRequest1'), 3000, 'next request');

    expect(session.animations(reqId)).toHaveLength(animated);
    expect(session.animations(reqId).filter((a) => a.end)).toHaveLength(1);
    expect(session.errors()).toEqual([
      expect.objectContaining({ code: 3, reqId, message: `req_id ${reqId} already ended` }),
      expect.objectContaining({ code: 3, reqId, message: `req_id ${reqId} already ended` }),
    ]);
    // The session itself carries on.
    expect(session.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('an interrupted req_id is never animated again either (and is not an error)', async () => {
    const h = await setup({ faults: { frameDelayMs: 30 } });
    const session = await rawSession(h);
    const reqId = '20261202000000_interrupted1';
    session.audio(reqId, pcmBytes(speech(1)), false);
    session.socket.send(encodeMessage({ type: 'client.interrupt', reqId }));
    await sleep(100);
    const before = session.animations(reqId).length;
    session.audio(reqId, pcmBytes(speech(0.4)), true);
    session.audio('20261202000000_nextRequest2', pcmBytes(speech(0.1)), true);
    await until(() => session.ended('20261202000000_nextRequest2'), 3000, 'next request');
    expect(session.animations(reqId)).toHaveLength(before);
    expect(session.errors()).toEqual([]);
  });
});

describe('local Motion Server: bounded memory', () => {
  it('ended and interrupted req_ids are remembered up to maxFinishedRequests per session and forgotten when the session ends', async () => {
    const h = await setup({ maxFinishedRequests: 4 });
    const session = await rawSession(h);
    for (let i = 0; i < 12; i += 1) {
      const reqId = `20261202000000_request${String(i).padStart(5, '0')}`;
      session.audio(reqId, pcmBytes(speech(0.05)), i % 3 !== 0);
      if (i % 3 === 0) session.socket.send(encodeMessage({ type: 'client.interrupt', reqId }));
    }
    const last = '20261202000000_request00011';
    await until(() => session.ended(last), 3000, 'last request');
    expect(h.server.retained).toMatchObject({ openRequests: 0, finishedRequests: 4 });
    // The most recent ones are still refused.
    session.audio(last, pcmBytes(speech(0.05)), true);
    await until(() => session.errors().length === 1, 3000, 'refusal');
    expect(session.errors()[0]).toMatchObject({ reqId: last, code: 3 });

    session.socket.close();
    await until(() => h.server.connectionCount === 0, 3000, 'session end');
    expect(h.server.retained).toMatchObject({ openRequests: 0, finishedRequests: 0 });
  });

  it('session tokens do not grow without bound: expired ones are swept and at most maxTokens are kept (the oldest is then refused)', async () => {
    const h = await setup({ maxTokens: 3 });
    const tokens: string[] = [];
    for (let i = 0; i < 8; i += 1) tokens.push(await fetchSessionToken({ consoleUrl: h.info.consoleEndpointUrl, apiKey: API_KEY }));
    expect(h.server.retained.tokens).toBe(3);

    const upgrade = (token: string): Promise<number> =>
      new Promise((resolve) => {
        const socket = new WebSocket(`${h.info.ingressEndpointUrl}/websocket?id=${AVATAR_ID}`, { headers: { 'X-App-ID': APP_ID, 'X-Session-Key': token } });
        sockets.push(socket);
        socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        socket.on('open', () => resolve(101));
        socket.on('error', () => undefined);
      });
    expect(await upgrade(tokens[0] ?? '')).toBe(400);
    expect(await upgrade(tokens[7] ?? '')).toBe(101);
  });

  it('expired tokens are swept when new ones are issued', async () => {
    const h = await setup();
    for (let i = 0; i < 5; i += 1) await fetchSessionToken({ consoleUrl: h.info.consoleEndpointUrl, apiKey: API_KEY, ttlSeconds: 1 });
    expect(h.server.retained.tokens).toBe(5);
    // ttl 1 s: expireAt is the next whole second + 1, so all five have expired 2 s from now.
    await sleep(2100);
    await fetchSessionToken({ consoleUrl: h.info.consoleEndpointUrl, apiKey: API_KEY });
    expect(h.server.retained.tokens).toBe(1);
  });
});

describe('local Motion Server: the confirm', () => {
  it('SERVER_CONFIRM_SESSION holds only connection_id (no field the public proto lacks)', async () => {
    const h = await setup();
    const session = await rawSession(h);
    const confirmBytes = session.raw.find((_, i) => session.messages[i]?.type === 'server.confirmSession');
    expect(confirmBytes).toBeDefined();
    // Walk the envelope by hand: Message.type (1) and server_confirm_session (3), which holds field 1 only.
    const reader = protobuf.Reader.create(confirmBytes ?? new Uint8Array(0));
    const fields: number[] = [];
    let inner: Uint8Array | undefined;
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      fields.push(tag >>> 3);
      if (tag >>> 3 === 3) inner = reader.bytes();
      else reader.skipType(tag & 7);
    }
    expect(fields).toEqual([1, 3]);
    const innerReader = protobuf.Reader.create(inner ?? new Uint8Array(0));
    const innerFields: number[] = [];
    while (innerReader.pos < innerReader.len) {
      const tag = innerReader.uint32();
      innerFields.push(tag >>> 3);
      innerReader.skipType(tag & 7);
    }
    expect(innerFields).toEqual([1]);
    expect(session.messages[0]).toEqual({ type: 'server.confirmSession', connectionId: expect.stringMatching(/^conn_/) });
  });

  it('a confirm from a server that adds unknown fields still confirms the client', async () => {
    const h = await setup();
    const confirm = encodeMessage({ type: 'server.confirmSession', connectionId: 'conn_x' });
    const writer = protobuf.Writer.create();
    writer.uint32((2 << 3) | 2).string('flame');
    const extra = writer.finish();
    // Inside server_confirm_session: rebuild the envelope with field 2 appended to the inner message.
    const inner = protobuf.Writer.create().uint32((1 << 3) | 2).string('conn_x').finish();
    const withExtra = new Uint8Array(inner.length + extra.length);
    withExtra.set(inner);
    withExtra.set(extra, inner.length);
    const envelope = protobuf.Writer.create().uint32((1 << 3) | 0).int32(MESSAGE_TYPE.serverConfirmSession).uint32((3 << 3) | 2).bytes(withExtra).finish();
    expect(decodeMessage(envelope)).toEqual(decodeMessage(confirm));
    // And the real client confirms against the local server.
    const client = new MotionClient(h.clientOptions());
    await expect(client.connect()).resolves.toEqual({ connectionId: expect.stringMatching(/^conn_/) });
    client.close();
  });
});
