/**
 * No secret reaches a client or a log line. A real VoiceServer on loopback runs sessions through
 * the real OpenAI SDK clients (LLM and TTS) pointed at a loopback fake OpenAI server whose error
 * bodies quote the API key, an internal host name and a service-account e-mail; a Motion Server
 * link with its key; HMAC session tokens; a dropped connection and a resume. Every text message
 * every client receives and every log line (pino at trace) is captured and searched.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { FakeStt } from '../../src/providers/fake/index.js';
import { OpenAiLlm, OpenAiTts } from '../../src/providers/index.js';
import type { Tool } from '../../src/providers/types.js';
import { createSessionToken, tokenAuth, VoiceServer } from '../../src/server/index.js';
import { audio, chunk, errorBody, json, OpenAiServer, sse } from '../providers/servers/openai-server.js';
import { RawClient, type Received } from '../server/helpers.js';
import { LineCapture } from './capture.js';

const CHAT = '/v1/chat/completions';
const SPEECH = '/v1/audio/speech';

// A key that matches no credential pattern: only the configured secret list can catch it.
const OPENAI_KEY = `vx-test-provider-key-${randomBytes(12).toString('hex')}`;
const MOTION_KEY = `motion-key-${randomBytes(12).toString('hex')}`;
const AUTH_SECRET = randomBytes(32).toString('base64url');
const INTERNAL_HOST = 'llm-gateway-7.corp.internal';
const SERVICE_ACCOUNT = 'voice-bot@acme-prod-123.iam.gserviceaccount.com';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A client that keeps every text frame exactly as it arrived. */
class RecordingClient extends RawClient {
  readonly raw: string[] = [];
  constructor(url: string) {
    super(url);
    this.socket.on('message', (data, isBinary) => {
      if (!isBinary) this.raw.push(String(data));
    });
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const pcm = (samples: number): Uint8Array => new Uint8Array(samples * 2).map((_, i) => (i % 2 === 0 ? 0 : 8));

describe('secrets never reach clients or logs', () => {
  it('through provider errors, a tool error, a refused Motion Server key, normal turns and a resume', async () => {
    const openai = await new OpenAiServer().start();
    cleanup.push(() => openai.close());
    const leak = `${INTERNAL_HOST} for ${SERVICE_ACCOUNT} with key ${OPENAI_KEY}`;
    openai
      // Turn 1: the LLM refuses the key, quoting it.
      .on(CHAT, json(401, errorBody(`Incorrect API key provided: ${OPENAI_KEY}. Upstream ${leak}`, 'invalid_request_error', 'invalid_api_key')))
      // Turn 2: text, then the TTS is rate-limited.
      .on(CHAT, sse([chunk({ role: 'assistant', content: 'Sure thing.' }), chunk({}, 'stop')]))
      // Turn 3: a tool call whose tool throws with internal detail, then a normal answer.
      .on(CHAT, sse([chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] }), chunk({}, 'tool_calls')]))
      .on(CHAT, sse([chunk({ role: 'assistant', content: 'All done.' }), chunk({}, 'stop')]))
      // Turn 4, after the resume: the LLM fails with a 500 quoting everything.
      .on(CHAT, json(500, errorBody(`internal error: ${leak}`)))
      // Turn 5: a normal turn.
      .on(CHAT, sse([chunk({ role: 'assistant', content: 'Back again.' }), chunk({}, 'stop')]));
    openai
      .on(SPEECH, json(429, errorBody(`Rate limit reached for ${leak}`, 'requests', 'rate_limit_exceeded')))
      .on(SPEECH, audio(pcm(2400)))
      .on(SPEECH, audio(pcm(2400)));

    // The Motion Server knows another key: the link's key is refused (the refusal must not quote it).
    const motion = new LocalMotionServer();
    const motionInfo = await motion.start({ apiKey: `other-${MOTION_KEY}`, appId: 'app-1', avatars: ['avatar-1'] });
    cleanup.push(() => motion.stop());

    const lookup: Tool = {
      name: 'lookup',
      description: 'Looks the booking up.',
      parameters: { type: 'object', properties: {} },
      execute: () => Promise.reject(new Error(`connect ECONNREFUSED ${INTERNAL_HOST}:5432 as ${SERVICE_ACCOUNT} (password ${OPENAI_KEY})`)),
    };
    const capture = new LineCapture();
    const hookErrors: { code: string; message: string }[] = [];
    const server = new VoiceServer({
      port: 0,
      vad: false,
      providers: {
        stt: new FakeStt({ recognize: () => '' }),
        llm: new OpenAiLlm({ apiKey: OPENAI_KEY, baseURL: openai.url, model: 'test-model' }),
        tts: new OpenAiTts({ apiKey: OPENAI_KEY, baseURL: openai.url }),
      },
      tools: [lookup],
      motion: {
        apiKey: MOTION_KEY,
        appId: 'app-1',
        avatarId: 'avatar-1',
        consoleEndpointUrl: motionInfo.consoleEndpointUrl,
        ingressEndpointUrl: motionInfo.ingressEndpointUrl,
        reconnect: { maxAttempts: 1 },
      },
      auth: tokenAuth(AUTH_SECRET),
      secrets: [OPENAI_KEY, AUTH_SECRET],
      logger: createLogger({ level: 'trace', destination: capture }),
      hooks: {
        onError: (error) => {
          hookErrors.push(error);
        },
      },
    });
    const { url } = await server.start();
    cleanup.push(() => server.stop());

    const clients: RecordingClient[] = [];
    const connect = (): RecordingClient => {
      const c = new RecordingClient(url);
      clients.push(c);
      cleanup.push(() => c.close());
      return c;
    };
    const helloTokens = [createSessionToken({ sub: 'alice', expiresIn: '5m' }, AUTH_SECRET), createSessionToken({ sub: 'mallory', expiresIn: '5m' }, randomBytes(32))];

    // A forged token is refused.
    const forged = connect();
    await forged.opened();
    forged.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 }, token: helloTokens[1] });
    expect(await forged.next('error')).toMatchObject({ code: 'auth_failed', message: 'authentication failed' });

    const a = connect();
    const ready = await a.hello(undefined, helloTokens[0]);
    const sessionId = String(ready['sessionId']);
    const errorsOf = (c: RawClient): Received[] => c.of('error');
    const avatarError = await a.next('error', (m) => String(m['message']).startsWith('avatar:'));
    expect(avatarError).toMatchObject({ code: 'provider_auth', message: "avatar: the Motion Server refused this server's credentials", fatal: false });

    a.send({ type: 'user.text', text: 'hello' });
    expect(await a.next('error', (m) => m['code'] === 'provider_auth' && !String(m['message']).startsWith('avatar:'))).toEqual({
      type: 'error',
      code: 'provider_auth',
      message: "the language model provider refused this server's credentials",
      fatal: false,
    });
    await until(() => a.of('reply.done').length === 1, 'the failed reply to end');

    a.send({ type: 'user.text', text: 'say something' });
    expect(await a.next('error', (m) => m['code'] === 'provider_rate_limited')).toEqual({
      type: 'error',
      code: 'provider_rate_limited',
      message: 'the text-to-speech provider is rate-limiting this server; try again shortly',
      fatal: false,
    });
    await until(() => a.of('reply.done').length === 2, 'the second reply to end');

    a.send({ type: 'user.text', text: 'look my booking up' });
    const toolEnd = await a.next('tool.end');
    expect(toolEnd).toMatchObject({ name: 'lookup', ok: false });
    expect(JSON.parse(String(toolEnd['error']))).toEqual({ error: 'the tool failed', code: 'tool_failed' });
    expect(await a.next('reply.done', (m) => m['text'] === 'All done.')).toMatchObject({ interrupted: false });

    // The connection drops; a new one resumes the session.
    a.socket.terminate();
    await a.closed();
    await until(() => server.sessions === 1, 'the session to wait for a resume');
    const b = connect();
    await b.opened();
    b.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken: ready['resumeToken'] });
    const resumed = await b.next('session.resumed');
    b.send({ type: 'user.text', text: 'still there?' });
    expect(await b.next('error', (m) => m['code'] === 'provider_failed')).toEqual({ type: 'error', code: 'provider_failed', message: 'the language model provider failed', fatal: false });
    await until(() => b.of('reply.done').length === 1, 'the failed reply after the resume');
    b.send({ type: 'user.text', text: 'and now?' });
    expect(await b.next('reply.done', (m) => m['text'] === 'Back again.')).toMatchObject({ interrupted: false });
    expect(errorsOf(b).every((m) => m['fatal'] === false)).toBe(true);

    // ---- what clients received
    const resumeTokens = [String(ready['resumeToken']), ...(typeof resumed['resumeToken'] === 'string' ? [resumed['resumeToken']] : [])];
    const neverToClients = [OPENAI_KEY, MOTION_KEY, AUTH_SECRET, INTERNAL_HOST, SERVICE_ACCOUNT, ...helloTokens];
    for (const c of clients) {
      for (const text of c.raw) {
        for (const secret of neverToClients) expect(text, `a client received ${text}`).not.toContain(secret);
        for (const token of resumeTokens) {
          if (!text.includes(token)) continue;
          // Only the message that hands the token to its own client carries it.
          const message = JSON.parse(text) as Received;
          expect(['session.ready', 'session.resumed']).toContain(message.type);
          expect(message['resumeToken']).toBe(token);
          expect(c === a ? token === resumeTokens[0] : c === b && token === resumeTokens[1]).toBe(true);
        }
      }
    }
    expect(clients.reduce((n, c) => n + c.raw.length, 0)).toBeGreaterThan(20);

    // ---- what was logged
    await new Promise((resolve) => setTimeout(resolve, 50));
    const log = capture.text();
    expect(capture.raw.length).toBeGreaterThan(20);
    for (const secret of [OPENAI_KEY, MOTION_KEY, AUTH_SECRET, ...resumeTokens, ...helloTokens]) {
      expect(log.includes(secret), `the log contains a secret (${secret.slice(0, 12)}…)`).toBe(false);
    }
    // The detail stayed on the server: the operator can still tell what failed, and where.
    const sessionErrors = capture.lines().filter((line) => line['msg'] === 'session error');
    expect(sessionErrors.some((line) => String(line['message']).includes(INTERNAL_HOST) && String(line['message']).includes('[redacted]'))).toBe(true);
    expect(capture.lines().some((line) => line['msg'] === 'tool call failed' && String(line['result']).includes('ECONNREFUSED'))).toBe(true);
    // …and so does the application's onError hook (server side, the provider's own words).
    expect(hookErrors.some((error) => error.code === 'provider_auth' && error.message.includes(INTERNAL_HOST))).toBe(true);
  }, 30_000);
});
