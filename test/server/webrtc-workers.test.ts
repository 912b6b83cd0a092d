/**
 * A VoiceServer whose WebRTC transports run in worker threads (`webrtc.workers` / `webrtc.pool`):
 * real worker threads, real werift peers through the client SDK, fake providers. What a caller
 * notices: agent audio over RTP, a barge-in whose kept text is exactly the audio that came, and a
 * worker crash that ends only the sessions on that worker.
 */
import * as werift from 'werift';
import { afterEach, describe, expect, it } from 'vitest';
import { connectWebRtc, VoxClient, type WebRtcAudioLink } from '../../src/client/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { WebRtcWorkerPool } from '../../src/transport/webrtc-pool.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const MS_PER_WORD = 100; // 5 frames of 20 ms per word
const WORDS = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty';

async function startServer(webrtc: VoiceServerOptions['webrtc']): Promise<{ url: string; server: VoiceServer }> {
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [WORDS] }), tts: new FakeTts({ msPerWord: MS_PER_WORD }) },
    webrtcHostAddresses: ['127.0.0.1'],
    webrtc,
  });
  const { url } = await server.start();
  cleanup.push(() => server.stop());
  return { url, server };
}

interface Caller {
  readonly client: VoxClient;
  readonly link: WebRtcAudioLink;
  /** RTP packets of agent audio received so far. */
  packets(): number;
  readonly errors: Array<{ code: string; fatal: boolean }>;
  closedCode(): number | undefined;
}

async function call(url: string): Promise<Caller> {
  const client = new VoxClient({ url, audio: { transport: 'webrtc', sampleRate: 48_000 }, heartbeatMs: 0, reconnect: false });
  cleanup.push(() => client.close());
  const errors: Caller['errors'] = [];
  let closed: number | undefined;
  client.on('error', (error) => errors.push({ code: error.code, fatal: error.fatal }));
  client.on('closed', ({ code }) => {
    closed = code;
  });
  await client.connect();
  const link = await connectWebRtc(client, { werift, hostAddresses: ['127.0.0.1'] });
  cleanup.push(() => link.close());
  let packets = 0;
  link.onAudio(() => {
    packets++;
  });
  return { client, link, errors, packets: () => packets, closedCode: () => closed };
}

function next<T>(client: VoxClient, type: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type}`)), timeoutMs);
    const off = client.on('message', (message) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      off();
      resolve(message as unknown as T);
    });
  });
}

const words = (text: string): number => text.split(/\s+/).filter((w) => w.length > 0).length;

/** One typed turn, answered in full; returns the reply's RTP packets the caller got (20 words × 100 ms = 100). */
async function typedTurn(caller: Caller): Promise<number> {
  const before = caller.packets();
  const done = next<{ text: string; interrupted: boolean }>(caller.client, 'reply.done');
  caller.client.sendText('count to twenty');
  expect(await done).toMatchObject({ text: WORDS, interrupted: false });
  await new Promise((resolve) => setTimeout(resolve, 300)); // the last packets land
  return caller.packets() - before;
}

describe('VoiceServer with WebRTC transport workers', () => {
  it('barge-in across the worker boundary: the text kept as heard is exactly the audio that reached the caller, and nothing of the reply comes after', async () => {
    const { url } = await startServer({ workers: 2 });
    const caller = await call(url);
    const audioStart = next(caller.client, 'reply.audio_start');
    const done = next<{ text: string; interrupted: boolean }>(caller.client, 'reply.done');
    caller.client.sendText('count to twenty');
    await audioStart;
    // Interrupt mid-word, somewhere in the middle of the 2 s reply.
    await expect.poll(() => caller.packets(), { timeout: 5000, interval: 5 }).toBeGreaterThanOrEqual(37);
    caller.client.interrupt();
    const reply = await done;
    expect(reply.interrupted).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const received = caller.packets();
    expect(received).toBeLessThan(100); // the rest of the reply never came
    // A word counts as heard once its last frame went out: exactly the words the caller received.
    expect(words(reply.text)).toBe(Math.floor(received / (MS_PER_WORD / 20)));
    expect(WORDS.startsWith(reply.text)).toBe(true);
  });

  it('a worker that dies ends only the sessions on it (transport_failed, fatal); the sessions on the other worker keep talking', async () => {
    const pool = new WebRtcWorkerPool({ workers: 2 });
    cleanup.push(() => pool.close());
    const { server } = await startServer({ pool });
    const url = server.address?.url ?? '';
    const callers: Caller[] = [];
    for (let i = 0; i < 4; i++) callers.push(await call(url));
    for (const caller of callers) expect(await typedTurn(caller)).toBe(100);
    expect(pool.workers.map((w) => w.sessions)).toEqual([2, 2]);

    await pool.terminateWorker(pool.workers[0]?.threadId ?? -1);

    await expect.poll(() => callers.filter((c) => c.closedCode() !== undefined).length, { timeout: 5000 }).toBe(2);
    const ended = callers.filter((c) => c.closedCode() !== undefined);
    const alive = callers.filter((c) => c.closedCode() === undefined);
    for (const caller of ended) {
      expect(caller.errors).toContainEqual({ code: 'transport_failed', fatal: true });
      expect(caller.closedCode()).toBe(4500);
    }
    await expect.poll(() => server.sessions).toBe(2);
    for (const caller of alive) {
      expect(caller.errors).toEqual([]);
      expect(await typedTurn(caller)).toBe(100);
    }
    // A new caller lands on the replacement worker and talks too.
    const late = await call(url);
    expect(await typedTurn(late)).toBe(100);
    expect(pool.workers.map((w) => w.sessions).sort()).toEqual([1, 2]);
  });

  it('webrtc.workers 0 keeps the transports in the main thread; a bad count is a ConfigError', async () => {
    const { url } = await startServer({ workers: 0 });
    // (With werift at both ends of one thread, the peer tends to miss the very first packet of a call.)
    expect(await typedTurn(await call(url))).toBeGreaterThanOrEqual(99);
    const providers = { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok'] }), tts: new FakeTts() };
    expect(() => new VoiceServer({ providers, webrtc: { workers: -1 } })).toThrow(
      expect.objectContaining({ code: 'config_invalid', field: 'webrtc.workers' }),
    );
  });
});
