/**
 * Log lines of whole sessions, captured at trace level: each carries its session, turn and state,
 * and no secret ever appears — the provider key (an OpenAI-compatible LLM on loopback that echoes
 * the key in an error, as OpenAI does), the Motion Server key, the auth token, resume tokens.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { LocalMotionServer } from '../../src/motion/local-server/index.js';
import { createLogger, parseLogLevel, REDACTED_PATHS, SECRET_KEYS } from '../../src/observability/logger.js';
import { FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { OpenAiLlm } from '../../src/providers/openai/index.js';
import { serveLogLevel } from '../../src/cli/serve.js';
import { VoiceServer } from '../../src/server/index.js';
import { errorBody, json, OpenAiServer, sse, textStream } from '../providers/servers/openai-server.js';
import { RawClient } from '../server/helpers.js';

type Line = Record<string, unknown>;

function capture(): { destination: Writable; lines: () => Line[]; text: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      callback();
    },
  });
  return {
    destination,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Line),
  };
}

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const PROVIDER_KEY = 'sk-logtest-provider-key-0123456789';
const MOTION_KEY = 'motion-key-logtest-abcdefghij';
const AUTH_TOKEN = 'auth-token-logtest-klmnopqrst';
const WRONG_TOKEN = 'wrong-resume-token-logtest-uvwxyz';
const CHAT = '/v1/chat/completions';

describe('session logs', () => {
  it('through a session with an error, a dropped socket and a resume: every line has its session and state, turn lines their turn, and no secret appears', async () => {
    const log = capture();
    const logger = createLogger({ level: 'trace', destination: log.destination });
    const openai = await new OpenAiServer().start();
    cleanup.push(() => openai.close());
    // OpenAI's own 401 repeats the key it was given.
    openai.on(
      CHAT,
      json(401, errorBody(`Incorrect API key provided: ${PROVIDER_KEY}. You can find your API key at https://platform.openai.com.`, 'invalid_request_error', 'invalid_api_key')),
      sse(textStream(['Yes, ', 'I hear you.'])),
      sse(textStream(['Welcome ', 'back.'])),
    );
    const motion = new LocalMotionServer();
    const info = await motion.start({ apiKey: MOTION_KEY, appId: 'app-1', avatars: ['avatar-1'] });
    cleanup.push(() => motion.stop());
    const server = new VoiceServer({
      port: 0,
      vad: false,
      logger,
      session: { ttlMs: 10_000 },
      auth: (token) => (token === AUTH_TOKEN ? { principal: 'user-1' } : false),
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: new OpenAiLlm({ apiKey: PROVIDER_KEY, baseURL: openai.url, model: 'loopback' }), tts: new FakeTts({ msPerWord: 50 }) },
      motion: { apiKey: MOTION_KEY, appId: 'app-1', avatarId: 'avatar-1', consoleEndpointUrl: info.consoleEndpointUrl, ingressEndpointUrl: info.ingressEndpointUrl },
    });
    const address = await server.start();
    cleanup.push(() => server.stop());
    const disconnected = new Promise<void>((resolve) => server.once('disconnect', () => resolve()));

    const first = new RawClient(address.url);
    cleanup.push(() => first.close());
    const ready = await first.hello(undefined, AUTH_TOKEN);
    const sessionId = String(ready['sessionId']);
    const resumeToken = String(ready['resumeToken']);
    first.send({ type: 'user.text', text: 'can you hear me?' });
    expect(await first.next('error')).toMatchObject({ code: 'provider_auth' });
    await first.next('reply.done', (m) => m['replyId'] === '1');
    first.send({ type: 'user.text', text: 'and now?' });
    await first.next('reply.done', (m) => m['replyId'] === '2');
    first.socket.terminate();
    await disconnected;

    const thief = new RawClient(address.url);
    cleanup.push(() => thief.close());
    await thief.opened();
    thief.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken: WRONG_TOKEN });
    expect(await thief.next('error')).toMatchObject({ code: 'session_resume_refused' });

    const back = new RawClient(address.url);
    cleanup.push(() => back.close());
    await back.opened();
    back.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken });
    await back.next('session.resumed');
    back.send({ type: 'user.text', text: 'still there?' });
    expect(await back.next('reply.done')).toMatchObject({ replyId: '3', text: 'Welcome back.' });
    back.send({ type: 'session.close' });
    await back.closed();
    await server.stop();

    const text = log.text();
    for (const secret of [PROVIDER_KEY, MOTION_KEY, AUTH_TOKEN, resumeToken, WRONG_TOKEN]) expect(text).not.toContain(secret);
    // The provider's error did reach the log, scrubbed.
    const lines = log.lines();
    const error = lines.find((l) => l['msg'] === 'session error');
    expect(error).toMatchObject({ session: sessionId, turn: 1, code: 'provider_auth' });
    expect(String(error?.['message'])).toContain('[redacted]');

    const own = lines.filter((l) => l['session'] === sessionId);
    const messages = own.map((l) => l['msg']);
    for (const msg of ['session started', 'state changed', 'turn started', 'turn ended', 'session error', 'session resume refused', 'session resumed', 'session closed']) {
      expect(messages, msg).toContain(msg);
    }
    // The session's own lines and those of its children (the Motion Server link among them).
    expect(own.some((l) => l['msg'] === 'opening Motion Server connection')).toBe(true);
    for (const line of own) expect(typeof line['state'], JSON.stringify(line)).toBe('string');
    // From a turn's start to its end, every line of the session carries the turn.
    for (const turn of [1, 2, 3]) {
      const from = own.findIndex((l) => l['msg'] === 'turn started' && l['turn'] === turn);
      const to = own.findIndex((l) => l['msg'] === 'turn ended' && l['turn'] === turn);
      expect(from, `turn ${turn}`).toBeGreaterThanOrEqual(0);
      expect(to).toBeGreaterThan(from);
      for (const line of own.slice(from, to + 1)) expect(line['turn'], JSON.stringify(line)).toBe(turn);
    }
    // The failed reply ended in `thinking` (the state announced after the line is `listening`).
    expect(own.find((l) => l['msg'] === 'turn ended' && l['turn'] === 1)).toMatchObject({ interrupted: true, state: 'thinking' });
    expect(own.filter((l) => l['msg'] === 'state changed').map((l) => l['state'])).toEqual(
      expect.arrayContaining(['listening', 'thinking', 'speaking', 'suspended', 'closed']),
    );
    // Between turns no turn is bound.
    expect(own.find((l) => l['msg'] === 'session resumed')?.['turn']).toBeUndefined();
  });

  it('every secret key is redacted at the top level and two objects down', () => {
    const log = capture();
    const logger = createLogger({ level: 'info', destination: log.destination });
    const value = (key: string, depth: number): string => `secret-${key}-${depth}`;
    for (const key of SECRET_KEYS) {
      logger.info({ [key]: value(key, 0), outer: { [key]: value(key, 1) }, err: { cause: { [key]: value(key, 2) } } }, 'secrets');
    }
    const text = log.text();
    for (const key of SECRET_KEYS) for (const depth of [0, 1, 2]) expect(text).not.toContain(value(key, depth));
    expect(log.lines()).toHaveLength(SECRET_KEYS.length);
    expect(log.lines()[0]).toMatchObject({ apiKey: '[redacted]', outer: { apiKey: '[redacted]' }, err: { cause: { apiKey: '[redacted]' } } });
    expect(REDACTED_PATHS).toContain('*.*["x-api-key"]');
  });
});

describe('log level', () => {
  it('--log-level wins over VOXSTATE_LOG_LEVEL, which wins over the CLI default warn; a bad level is a ConfigError naming its source', () => {
    expect(serveLogLevel({}, {})).toBe('warn');
    expect(serveLogLevel({}, { VOXSTATE_LOG_LEVEL: 'debug' })).toBe('debug');
    expect(serveLogLevel({ logLevel: 'error' }, { VOXSTATE_LOG_LEVEL: 'debug' })).toBe('error');
    expect(() => serveLogLevel({ logLevel: 'loud' }, {})).toThrow(ConfigError);
    expect(() => serveLogLevel({ logLevel: 'loud' }, {})).toThrow(/--log-level/);
    expect(() => serveLogLevel({}, { VOXSTATE_LOG_LEVEL: 'loud' })).toThrow(/VOXSTATE_LOG_LEVEL/);
    expect(parseLogLevel('x', ' Info ')).toBe('info');
  });

  it('the CLI refuses an unknown --log-level before starting anything, naming the flag', async () => {
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--port', '0', '--log-level', 'loud'], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(output).toMatch(/--log-level: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"/);
  });
});
