import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { MotionClient, REQ_ID_PATTERN, fetchSessionToken, newReqId, resolveEndpoints, type MotionAnimation } from '../../src/motion/client/index.js';
import { MotionError } from '../../src/motion/errors.js';
import { decodeMessage, encodeMessage, type MotionMessage } from '../../src/motion/protocol/index.js';
import { API_KEY, APP_ID, AVATAR_ID, sleep, speech, startServer, until, type Harness } from './helpers.js';

let harness: Harness | undefined;
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await harness?.server.stop();
  harness = undefined;
});

async function setup(options: Parameters<typeof startServer>[0] = {}): Promise<Harness> {
  harness = await startServer(options);
  return harness;
}

function track(client: MotionClient): MotionClient {
  cleanups.push(() => client.close());
  return client;
}

async function connectError(promise: Promise<unknown>): Promise<MotionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MotionError);
  return error as MotionError;
}

describe('endpoints and ids', () => {
  it('resolveEndpoints maps regions to the spatius.ai domain and cn-* regions to spatialwalk.top', () => {
    expect(resolveEndpoints()).toEqual({
      consoleUrl: 'https://console.us-west.spatius.ai/v1/console',
      ingressUrl: 'wss://api.us-west.spatius.ai/v2/driveningress',
    });
    expect(resolveEndpoints({ region: 'ap-northeast' }).ingressUrl).toBe('wss://api.ap-northeast.spatius.ai/v2/driveningress');
    expect(resolveEndpoints({ region: 'cn-shanghai' })).toEqual({
      consoleUrl: 'https://console.cn-shanghai.spatialwalk.top/v1/console',
      ingressUrl: 'wss://api.cn-shanghai.spatialwalk.top/v2/driveningress',
    });
  });

  it('resolveEndpoints honours overrides and rejects wrong schemes', () => {
    expect(resolveEndpoints({ consoleEndpointUrl: 'http://127.0.0.1:1/v1/console/', ingressEndpointUrl: 'ws://127.0.0.1:1/v2/driveningress' })).toEqual({
      consoleUrl: 'http://127.0.0.1:1/v1/console',
      ingressUrl: 'ws://127.0.0.1:1/v2/driveningress',
    });
    expect(() => resolveEndpoints({ ingressEndpointUrl: 'ftp://127.0.0.1:1/x' })).toThrow(ConfigError);
    expect(() => resolveEndpoints({ region: 'US West' })).toThrow(ConfigError);
  });

  it('newReqId has the YYYYMMDDHHMMSS_<12 chars> format in UTC', () => {
    const id = newReqId(new Date(Date.UTC(2025, 0, 2, 3, 4, 5)));
    expect(id).toMatch(REQ_ID_PATTERN);
    expect(id.startsWith('20250102030405_')).toBe(true);
    expect(newReqId()).not.toBe(newReqId());
  });
});

describe('session tokens', () => {
  it('fetchSessionToken returns a token for the right API key and a 401 MotionError for a wrong one', async () => {
    const { info } = await setup();
    const token = await fetchSessionToken({ consoleUrl: info.consoleEndpointUrl, apiKey: API_KEY });
    expect(token.length).toBeGreaterThan(10);
    const error = await connectError(fetchSessionToken({ consoleUrl: info.consoleEndpointUrl, apiKey: 'wrong-key' }));
    expect(error).toMatchObject({ phase: 'token', status: 401, reason: 'token_refused', retryable: false });
    expect(error.message).toContain('invalid_api_key');
    expect(error.message).not.toContain('wrong-key');
  });

  it('a 503 from the console is retryable', async () => {
    const h = await setup({ faults: { tokenStatus: 503 } });
    const error = await connectError(track(new MotionClient(h.clientOptions())).connect());
    expect(error).toMatchObject({ phase: 'token', status: 503, retryable: true });
  });
});

describe('MotionClient ↔ local Motion Server', () => {
  it('a reply yields keyframes at 25 fps of audio time, all under its req_id, with end exactly once', async () => {
    const h = await setup();
    const client = track(new MotionClient(h.clientOptions()));
    const confirm = await client.connect();
    expect(confirm.connectionId).toMatch(/^conn_/);
    const animations: MotionAnimation[] = [];
    client.on('animation', (a) => animations.push(a));
    let idle = 0;
    client.on('idle', () => (idle += 1));

    const audio = speech(2);
    let reqId = '';
    for (let offset = 0; offset < audio.length; offset += 1600) {
      reqId = client.sendAudio(audio.subarray(offset, offset + 1600), false);
    }
    expect(client.sendAudio(new Int16Array(0), true)).toBe(reqId);
    expect(reqId).toMatch(REQ_ID_PATTERN);
    await until(() => animations.some((a) => a.end), 3000, 'end');
    await sleep(50);

    expect(animations.filter((a) => a.end)).toHaveLength(1);
    expect(animations.at(-1)?.end).toBe(true);
    expect(new Set(animations.map((a) => a.reqId))).toEqual(new Set([reqId]));
    expect(new Set(animations.map((a) => a.connectionId))).toEqual(new Set([confirm.connectionId]));
    const keyframes = animations.reduce((n, a) => n + a.keyframeCount, 0);
    expect(keyframes).toBe(50); // 2 s × 25 fps
    expect(idle).toBe(1);

    // The relayed bytes are complete envelopes: the keyframes decode, and the jaw follows the audio.
    const jaw = animations.flatMap((a) => {
      const message = decodeMessage(a.bytes) as Extract<MotionMessage, { type: 'server.responseAnimation' }>;
      return message.keyframes.map((k) => k.jawPose[0] ?? 0);
    });
    expect(Math.max(...jaw)).toBeGreaterThan(0.15);
    expect(Math.min(...jaw)).toBeLessThan(0.1);

    // The next reply gets a new req_id.
    const next = client.sendAudio(speech(0.2), true);
    expect(next).not.toBe(reqId);
    await until(() => animations.some((a) => a.reqId === next && a.end), 3000, 'second reply');
  });

  it('query-parameter auth works like header auth', async () => {
    const h = await setup();
    const client = track(new MotionClient(h.clientOptions({ useQueryAuth: true })));
    await expect(client.connect()).resolves.toMatchObject({ connectionId: expect.stringMatching(/^conn_/) });
  });

  it('interrupt() mid-reply: no frame of that req_id after the ack, and the server stops within one frame period', async () => {
    const h = await setup({ faults: { frameDelayMs: 60 } });
    const client = track(new MotionClient(h.clientOptions()));
    await client.connect();
    const animations: Array<MotionAnimation & { at: number }> = [];
    client.on('animation', (a) => animations.push({ ...a, at: performance.now() }));
    const audio = speech(3);
    let reqId = '';
    // Real-time streaming: 40 ms of audio every 40 ms.
    for (let offset = 0; offset < 16000 * 0.6; offset += 640) {
      reqId = client.sendAudio(audio.subarray(offset, offset + 640), false);
      await sleep(40);
    }
    expect(animations.length).toBeGreaterThan(5);
    const interrupted = await client.interrupt();
    const ackAt = performance.now();
    expect(interrupted).toEqual([reqId]);
    await sleep(40);
    const sentByServer = h.server.stats.animationMessages;
    await sleep(250);
    expect(h.server.stats.animationMessages).toBe(sentByServer);
    expect(h.server.stats.interrupts).toBe(1);
    expect(animations.filter((a) => a.at > ackAt)).toHaveLength(0);
    // The next audio starts a new reply.
    expect(client.sendAudio(speech(0.1), true)).not.toBe(reqId);
  });

  it('egress mode: configure carries the LiveKit config; only progress and one deduplicated end arrive', async () => {
    const h = await setup();
    const client = track(
      new MotionClient(h.clientOptions({ egress: { type: 'livekit', url: 'wss://lk.invalid', apiKey: 'k', apiSecret: 's', roomName: 'room' } })),
    );
    await client.connect();
    const animations: MotionAnimation[] = [];
    client.on('animation', (a) => animations.push(a));
    client.sendAudio(speech(0.5), false);
    client.sendAudio(speech(0.5), true);
    await until(() => animations.some((a) => a.end));
    await sleep(50);
    expect(animations.filter((a) => a.end)).toHaveLength(1);
    expect(animations.every((a) => a.keyframeCount === 0)).toBe(true);
    expect(client.stats.droppedEnvelopes).toBe(1); // the repeated drained signal
  });

  it('an invalid egress config is answered with ServerError 3 and the handshake fails, not retryable', async () => {
    const h = await setup();
    const client = track(new MotionClient(h.clientOptions({ egress: { type: 'agora', channelName: '', token: 't', uid: 1 } })));
    const error = await connectError(client.connect());
    expect(error).toMatchObject({ phase: 'handshake', reason: 'handshake_rejected', serverCode: 3, retryable: false });
  });

  it.each([
    [401, 'token_expired', true],
    [400, 'token_invalid', false],
    [402, 'billing_required', false],
    [404, 'app_unrecognized', false],
  ] as const)('a refused upgrade (%i) keeps its HTTP status: %s, retryable %s', async (status, reason, retryable) => {
    const h = await setup({ faults: { refuseUpgrade: { status } } });
    const error = await connectError(track(new MotionClient(h.clientOptions())).connect());
    expect(error).toMatchObject({ phase: 'connect', status, reason, retryable });
  });

  it('a bad session token is refused with 400, a wrong app id and an unknown avatar with 404 saying which', async () => {
    const h = await setup();
    const fakeFetch: typeof fetch = () => Promise.resolve(new Response(JSON.stringify({ sessionToken: 'forged' }), { status: 200 }));
    const forged = await connectError(track(new MotionClient(h.clientOptions({ fetch: fakeFetch }))).connect());
    expect(forged).toMatchObject({ status: 400, reason: 'token_invalid' });
    const app = await connectError(track(new MotionClient(h.clientOptions({ appId: 'other-app' }))).connect());
    expect(app).toMatchObject({ status: 404, reason: 'app_unrecognized' });
    const avatar = await connectError(track(new MotionClient(h.clientOptions({ avatarId: 'nobody' }))).connect());
    expect(avatar).toMatchObject({ status: 404, reason: 'avatar_not_found' });
  });

  it('the handshake settles on timeout, an empty connection_id, and an unauthenticated ServerError', async () => {
    const h = await setup({ faults: { confirmDelayMs: 1000 } });
    const timeout = await connectError(track(new MotionClient(h.clientOptions({ handshakeTimeoutMs: 200 }))).connect());
    expect(timeout).toMatchObject({ reason: 'handshake_timeout', retryable: true });
    h.server.setFaults({ emptyConnectionId: true });
    const empty = await connectError(track(new MotionClient(h.clientOptions())).connect());
    expect(empty).toMatchObject({ phase: 'handshake', reason: 'protocol' });
    h.server.setFaults({ rejectConfigure: { code: 16, message: 'unauthenticated' } });
    const auth = await connectError(track(new MotionClient(h.clientOptions())).connect());
    expect(auth).toMatchObject({ phase: 'handshake', reason: 'auth_failed', serverCode: 16, retryable: false });
  });

  it('a server that closes before confirming settles the handshake with the typed close code', async () => {
    const http: Server = createServer();
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (socket) => socket.close(4010, 'auth failed'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => { wss.close(); http.close(() => resolve()); }));
    const port = (http.address() as AddressInfo).port;
    const client = track(
      new MotionClient({
        apiKey: API_KEY,
        appId: APP_ID,
        avatarId: AVATAR_ID,
        consoleEndpointUrl: `http://127.0.0.1:${port}/v1/console`,
        ingressEndpointUrl: `ws://127.0.0.1:${port}/v2/driveningress`,
        fetch: () => Promise.resolve(new Response(JSON.stringify({ sessionToken: 't' }), { status: 200 })),
      }),
    );
    const error = await connectError(client.connect());
    expect(error).toMatchObject({ phase: 'handshake', closeCode: 4010, reason: 'auth_failed', retryable: false });
  });

  it.each([
    [4001, 'credits_exhausted', false],
    [4002, 'session_timeout', true],
    [4003, 'concurrency_limit', false],
    [4010, 'auth_failed', false],
    [4503, 'upstream_unavailable', true],
  ] as const)('close code %i after the handshake is reported once as %s (retryable %s)', async (code, reason, retryable) => {
    const h = await setup({ faults: { closeAfterFrames: { frames: 3, code } } });
    const client = track(new MotionClient(h.clientOptions()));
    await client.connect();
    const closes: Array<MotionError | undefined> = [];
    client.on('close', (e) => closes.push(e));
    client.sendAudio(speech(1), true);
    await until(() => closes.length > 0);
    await sleep(30);
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatchObject({ phase: 'stream', closeCode: code, reason, retryable });
    expect(() => client.sendAudio(speech(0.1), false)).toThrow(MotionError);
    client.close();
    expect(closes).toHaveLength(1);
  });

  it('a dropped connection is reported as a retryable network error', async () => {
    const h = await setup({ faults: { dropAfterFrames: { frames: 2 } } });
    const client = track(new MotionClient(h.clientOptions()));
    await client.connect();
    const closes: Array<MotionError | undefined> = [];
    client.on('close', (e) => closes.push(e));
    client.sendAudio(speech(1), true);
    await until(() => closes.length > 0);
    expect(closes[0]).toMatchObject({ closeCode: 1006, reason: 'network', retryable: true });
  });

  it('never logs the API key or the session token, even with query auth at debug level', async () => {
    const h = await setup();
    const sink = new PassThrough();
    let logged = '';
    sink.on('data', (chunk: Buffer) => (logged += chunk.toString('utf8')));
    const logger = createLogger({ level: 'trace', destination: sink });
    let token = '';
    const spyFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const body = (await response.json()) as { sessionToken: string };
      token = body.sessionToken;
      return new Response(JSON.stringify(body), { status: response.status });
    };
    const client = track(new MotionClient(h.clientOptions({ useQueryAuth: true, logger, fetch: spyFetch })));
    await client.connect();
    client.close();
    await sleep(20);
    expect(logged).toContain('connecting to Motion Server');
    expect(token).not.toBe('');
    expect(logged).not.toContain(API_KEY);
    expect(logged).not.toContain(token);
  });
});

describe('local Motion Server protocol errors', () => {
  async function rawSocket(h: Harness): Promise<{ socket: WebSocket; messages: MotionMessage[]; closed: Promise<number> }> {
    const token = await fetchSessionToken({ consoleUrl: h.info.consoleEndpointUrl, apiKey: API_KEY });
    const socket = new WebSocket(`${h.info.ingressEndpointUrl}/websocket?id=${AVATAR_ID}`, {
      headers: { 'X-App-ID': APP_ID, 'X-Session-Key': token },
      perMessageDeflate: false,
    });
    cleanups.push(() => socket.terminate());
    const messages: MotionMessage[] = [];
    socket.on('message', (data: Buffer) => messages.push(decodeMessage(new Uint8Array(data))));
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return { socket, messages, closed };
  }

  it('a text frame gets ServerError 3 and close 1003', async () => {
    const h = await setup();
    const { socket, messages, closed } = await rawSocket(h);
    socket.send('{"type":"hello"}');
    expect(await closed).toBe(1003);
    expect(messages).toEqual([expect.objectContaining({ type: 'server.error', code: 3 })]);
  });

  it('a malformed protobuf envelope gets ServerError 3 and close 1002', async () => {
    const h = await setup();
    const { socket, messages, closed } = await rawSocket(h);
    socket.send(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x01]));
    expect(await closed).toBe(1002);
    expect(messages).toEqual([expect.objectContaining({ type: 'server.error', code: 3, message: 'malformed protobuf envelope' })]);
  });

  it('an unsupported sample rate is answered with ServerError 3, audio before configure closes 1002', async () => {
    const h = await setup();
    const first = await rawSocket(h);
    first.socket.send(encodeMessage({ type: 'client.configureSession', sampleRate: 11025, audioFormat: 'pcm_s16le' }));
    await until(() => first.messages.length > 0);
    expect(first.messages[0]).toMatchObject({ type: 'server.error', code: 3 });
    const second = await rawSocket(h);
    second.socket.send(encodeMessage({ type: 'client.audioInput', reqId: 'r', end: true, audio: new Uint8Array(2) }));
    expect(await second.closed).toBe(1002);
  });
});
