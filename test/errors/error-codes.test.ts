/**
 * Every error code of the wire protocol's enum is produced somewhere, by the component that owns
 * it, in a way a user could trigger. Each producer below runs the real code path (loopback servers
 * for providers, real ONNX loading, the real session and tools actors) and returns the code it saw.
 * A new code without a producer here fails this test.
 */
import { createServer } from 'node:http';
import * as werift from 'werift';
import type { AddressInfo } from 'node:net';
import { createActor, toPromise } from 'xstate';
import { describe, expect, it } from 'vitest';
import { assertFiniteSamples } from '../../src/audio/frame.js';
import type { ErrorCode } from '../../src/errors.js';
import { isVoxError } from '../../src/errors.js';
import { ERROR_CODES, parseClientMessage } from '../../src/protocol/index.js';
import { OpenAiLlm } from '../../src/providers/openai/index.js';
import { withResilience } from '../../src/providers/resilience.js';
import type { LlmProvider } from '../../src/providers/types.js';
import { createToolsActor } from '../../src/session/actors.js';
import { resolveSessionSettings } from '../../src/session/config.js';
import { loadSileroModel } from '../../src/vad/model.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import { Simulation } from '../../src/testing/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer } from '../../src/server/index.js';
import { connectWebRtc, VoxClient } from '../../src/client/index.js';
import { WebRtcWorkerPool } from '../../src/transport/webrtc-pool.js';
import { MemorySessionStore } from '../../src/session/store.js';
import { RedisSessionStore } from '../../src/session/redis-store.js';
import { delay, RawClient } from '../server/helpers.js';

function codeOf(error: unknown): string {
  if (isVoxError(error)) return error.code;
  throw error;
}

async function thrown(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    return codeOf(error);
  }
  throw new Error('expected an error');
}

async function drain(llm: LlmProvider, signal = new AbortController().signal): Promise<void> {
  for await (const _ of llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal })) {
    // consume
  }
}

/** An OpenAI-compatible endpoint answering every request with `handler`. */
async function endpoint(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function openAiCall(handler: Parameters<typeof createServer>[1], wrap: (llm: OpenAiLlm) => LlmProvider = (l) => l, signal?: AbortSignal): Promise<string> {
  const server = await endpoint(handler);
  try {
    const llm = wrap(new OpenAiLlm({ apiKey: 'sk-test', baseURL: server.url, maxRetries: 0 }));
    return await thrown(() => drain(llm, signal));
  } finally {
    await server.close();
  }
}

/** A server exchange over a raw client; returns the first error code the client gets. */
async function serverError(act: (client: RawClient) => Promise<void>, options: Partial<ConstructorParameters<typeof VoiceServer>[0]> = {}): Promise<string> {
  const server = new VoiceServer({
    port: 0,
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() },
    ...options,
  });
  const { url } = await server.start();
  const client = new RawClient(url);
  try {
    await client.opened();
    await act(client);
    return String((await client.next('error'))['code']);
  } finally {
    await client.close();
    await server.stop();
  }
}

const wsHello = { type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } };

const producers: Record<ErrorCode, () => Promise<string>> = {
  config_invalid: () => thrown(() => resolveSessionSettings({ minInterruptionMs: -5 })),
  protocol_invalid_json: async () => (parseClientMessage('{nope') as { error: { code: string } }).error.code,
  protocol_invalid_message: async () => (parseClientMessage('{"type":"user.shout"}') as { error: { code: string } }).error.code,
  protocol_message_too_large: async () => (parseClientMessage(JSON.stringify({ type: 'user.text', text: 'x'.repeat(600) }), 256) as { error: { code: string } }).error.code,
  protocol_unsupported_version: () => serverError(async (c) => c.send({ ...wsHello, protocol: 42 })),
  protocol_not_ready: () => serverError(async (c) => c.send({ type: 'user.text', text: 'too early' })),
  audio_invalid_format: () =>
    serverError(async (c) => {
      c.send(wsHello);
      await c.next('session.ready');
      c.socket.send(Buffer.alloc(3));
    }),
  audio_invalid_samples: () => thrown(() => assertFiniteSamples(Float32Array.of(0, Number.NaN))),
  audio_rate_exceeded: () =>
    serverError(async (c) => {
      c.send(wsHello);
      await c.next('session.ready');
      // 4 s of audio at once: the 2 s burst is taken, the rest is over the rate.
      for (let i = 0; i < 200; i++) c.sendAudio(new Int16Array(320));
    }),
  connection_idle: () => serverError(async () => undefined, { connectionIdleTimeoutMs: 100 }),
  provider_failed: async () => {
    const sim = new Simulation({ llm: { fail: () => true } }).start();
    sim.type('hello');
    await sim.advance(100);
    return sim.emitted('error')[0]?.code ?? 'none';
  },
  provider_timeout: () => openAiCall(() => undefined, (llm) => withResilience(llm, { retries: 0, timeoutMs: 100 })),
  provider_aborted: () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    return openAiCall(() => undefined, (llm) => llm, controller.signal);
  },
  provider_rate_limited: () => openAiCall((_req, res) => res.writeHead(429, { 'content-type': 'application/json' }).end('{"error":{"message":"slow down"}}')),
  provider_auth: () => openAiCall((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"message":"bad key"}}')),
  provider_bad_response: () =>
    openAiCall((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {this is not json}\n\n');
    }),
  provider_unavailable: () => openAiCall((_req, res) => res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"down"}}')),
  vad_inference_failed: async () => {
    const vad = new SharedVad({
      model: {
        run: async () => {
          throw new Error('inference exploded');
        },
        close: async () => undefined,
      },
    });
    try {
      return await thrown(() => vad.openStream().infer(new Float32Array(512)));
    } finally {
      await vad.close();
    }
  },
  vad_model_missing: () => thrown(() => loadSileroModel({ modelPath: '/nonexistent/silero.onnx' })),
  transport_failed: async () => {
    // The WebRTC transport worker of a live session dies.
    const pool = new WebRtcWorkerPool({ workers: 1 });
    const server = new VoiceServer({
      port: 0,
      vad: false,
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() },
      webrtcHostAddresses: ['127.0.0.1'],
      webrtc: { pool },
    });
    const { url } = await server.start();
    const client = new VoxClient({ url, audio: { transport: 'webrtc', sampleRate: 48_000 }, heartbeatMs: 0, reconnect: false });
    try {
      const error = new Promise<string>((resolve) => client.on('error', (e) => resolve(e.code)));
      await client.connect();
      const link = await connectWebRtc(client, { werift, hostAddresses: ['127.0.0.1'] });
      await pool.terminateWorker(pool.workers[0]?.threadId ?? -1);
      const code = await error;
      await link.close();
      return code;
    } finally {
      await client.close();
      await server.stop();
      await pool.close();
    }
  },
  session_invalid_state: () =>
    serverError(async (c) => {
      c.send(wsHello);
      await c.next('session.ready');
      c.send({ type: 'webrtc.offer', sdp: 'v=0' });
    }),
  session_not_found: () => serverError(async (c) => c.send({ type: 'session.resume', protocol: 1, sessionId: 'nope', resumeToken: 'x' })),
  session_resume_refused: async () => {
    const server = new VoiceServer({ port: 0, vad: false, providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() } });
    const { url } = await server.start();
    try {
      const owner = new RawClient(url);
      await owner.opened();
      owner.send(wsHello);
      const ready = await owner.next('session.ready');
      owner.socket.terminate();
      await owner.closed();
      const thief = new RawClient(url);
      await thief.opened();
      thief.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: 'guess' });
      const code = String((await thief.next('error'))['code']);
      await thief.close();
      return code;
    } finally {
      await server.stop();
    }
  },
  session_expired: async () => {
    const server = new VoiceServer({ port: 0, vad: false, session: { ttlMs: 50 }, providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() } });
    const { url } = await server.start();
    try {
      const owner = new RawClient(url);
      await owner.opened();
      owner.send(wsHello);
      const ready = await owner.next('session.ready');
      owner.socket.terminate();
      await delay(150);
      const late = new RawClient(url);
      await late.opened();
      late.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
      const code = String((await late.next('error'))['code']);
      await late.close();
      return code;
    } finally {
      await server.stop();
    }
  },
  session_limit: () => serverError(async (c) => c.send(wsHello), { session: { limits: { maxSessions: 0 } } }),
  session_moved: async () => {
    // Two nodes sharing one store: the session is resumed on the second while its client still talks to the first.
    const store = new MemorySessionStore({ nodeId: 'first' });
    const providers = () => ({ stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() });
    const first = new VoiceServer({ port: 0, vad: false, providers: providers(), session: { store } });
    const second = new VoiceServer({ port: 0, vad: false, providers: providers(), session: { store: store.forNode('second') } });
    const [a, b] = [await first.start(), await second.start()];
    const owner = new RawClient(a.url);
    const other = new RawClient(b.url);
    try {
      await owner.opened();
      owner.send(wsHello);
      const ready = await owner.next('session.ready');
      owner.send({ type: 'user.text', text: 'hi' });
      await owner.next('reply.done');
      await other.opened();
      other.send({ type: 'session.resume', protocol: 1, sessionId: ready['sessionId'], resumeToken: ready['resumeToken'] });
      await other.next('session.resumed');
      owner.send({ type: 'user.text', text: 'still mine?' });
      return String((await owner.next('error'))['code']);
    } finally {
      await owner.close();
      await other.close();
      await first.stop();
      await second.stop();
    }
  },
  session_store_unavailable: async () => {
    // A Redis store on a port nothing listens on.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return serverError(async (c) => c.send({ type: 'session.resume', protocol: 1, sessionId: 'any', resumeToken: 'x' }), {
      session: { store: new RedisSessionStore({ connection: `redis://127.0.0.1:${port}`, commandTimeoutMs: 1000 }) },
    });
  },
  auth_failed: () => serverError(async (c) => c.send({ ...wsHello, token: 'wrong' }), { auth: (token) => token === 'right' }),
  tool_failed: async () => {
    const results = await toPromise(
      createActor(createToolsActor([{ name: 'book', description: '', parameters: {}, execute: async () => Promise.reject(new Error('no tables')) }]), {
        input: { calls: [{ id: 'c1', name: 'book', arguments: '{}' }] },
      }).start(),
    );
    return (JSON.parse(results[0]?.content ?? '{}') as { code: string }).code;
  },
  tool_unknown: async () => {
    const results = await toPromise(createActor(createToolsActor([]), { input: { calls: [{ id: 'c1', name: 'teleport', arguments: '{}' }] } }).start());
    return (JSON.parse(results[0]?.content ?? '{}') as { code: string }).code;
  },
  tool_invalid_arguments: async () => {
    const tool = { name: 'book', description: '', parameters: {}, execute: async () => 'ok' };
    const results = await toPromise(createActor(createToolsActor([tool]), { input: { calls: [{ id: 'c1', name: 'book', arguments: '{people: two' }] } }).start());
    return (JSON.parse(results[0]?.content ?? '{}') as { code: string }).code;
  },
  internal: async () => {
    const server = new VoiceServer({
      port: 0,
      vad: false,
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['ok.'] }), tts: new FakeTts() },
      hooks: {
        onConnection: () => {
          throw new Error('hook bug');
        },
      },
    });
    const codes: string[] = [];
    server.on('error', (e) => codes.push(e.code));
    const { url } = await server.start();
    const client = new RawClient(url);
    try {
      await client.opened();
      client.send(wsHello);
      await client.next('session.ready');
      return codes[0] ?? 'none';
    } finally {
      await client.close();
      await server.stop();
    }
  },
};

describe('error codes', () => {
  it('the producer table covers exactly the wire enum', () => {
    expect(Object.keys(producers).sort()).toEqual([...ERROR_CODES].sort());
  });

  it.each([...ERROR_CODES])('%s is produced by the component that owns it', async (code) => {
    expect(await producers[code]()).toBe(code);
  });
});
