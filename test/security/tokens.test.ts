/**
 * HMAC session tokens: the helper itself, `tokenAuth` through a real server on loopback, and the
 * CLI (`voxstate token create`, `serve` with VOXSTATE_AUTH_SECRET).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { createSessionToken, tokenAuth, verifySessionToken, VoiceServer } from '../../src/server/index.js';
import { RawClient } from '../server/helpers.js';

const SECRET = randomBytes(32).toString('base64url');
const OTHER = randomBytes(32).toString('base64url');
const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);

describe('createSessionToken / verifySessionToken', () => {
  it('a token round-trips: its subject, scopes and expiry come back', () => {
    const token = createSessionToken({ sub: 'user-42', expiresIn: '15m', scopes: ['voice', 'inspect'] }, SECRET, { now: T0 });
    expect(token).toMatch(/^vx1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifySessionToken(token, SECRET, { now: T0 + 60_000 })).toEqual({ ok: true, sub: 'user-42', scopes: ['voice', 'inspect'], expiresAt: T0 + 15 * 60_000 });
    expect(verifySessionToken(createSessionToken({ sub: 'a', expiresIn: 1000 }, SECRET, { now: T0 }), SECRET, { now: T0 })).toEqual({ ok: true, sub: 'a', scopes: [], expiresAt: T0 + 1000 });
  });

  it('a tampered payload or signature, or another secret, is bad_signature', () => {
    const token = createSessionToken({ sub: 'user-42', expiresIn: '1h' }, SECRET, { now: T0 });
    const [prefix, payload, signature] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', iat: T0, exp: T0 + 3_600_000 })).toString('base64url');
    expect(verifySessionToken(`${prefix}.${forged}.${signature}`, SECRET, { now: T0 })).toEqual({ ok: false, reason: 'bad_signature' });
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('A') ? 'B' : 'A'}${signature.slice(-1)}`;
    expect(verifySessionToken(`${prefix}.${payload}.${flipped}`, SECRET, { now: T0 })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifySessionToken(`${prefix}.${payload}.${signature.slice(0, 20)}`, SECRET, { now: T0 })).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifySessionToken(token, OTHER, { now: T0 })).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('anything that is not a token of this format is malformed', () => {
    for (const bad of ['', 'abc', 'vx1.abc', 'vx2.abc.def', 'vx1.a b.c', 'vx1..', 'a.b.c.d', 42, undefined]) {
      expect(verifySessionToken(bad, SECRET), String(bad)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('expiry against a fixed clock, with leeway', () => {
    const token = createSessionToken({ sub: 'u', expiresIn: '1h' }, SECRET, { now: T0 });
    expect(verifySessionToken(token, SECRET, { now: T0 + 3_600_000 }).ok).toBe(true);
    expect(verifySessionToken(token, SECRET, { now: T0 + 3_600_001 })).toEqual({ ok: false, reason: 'expired' });
    expect(verifySessionToken(token, SECRET, { now: T0 + 3_630_000, leewayMs: 30_000 }).ok).toBe(true);
    expect(verifySessionToken(token, SECRET, { now: T0 + 3_630_001, leewayMs: 30_000 })).toEqual({ ok: false, reason: 'expired' });
  });

  it('rotation: verifying with [next, current] accepts tokens of both; dropping a secret refuses its tokens', () => {
    const old = createSessionToken({ sub: 'old', expiresIn: '1h' }, SECRET, { now: T0 });
    const fresh = createSessionToken({ sub: 'new', expiresIn: '1h' }, OTHER, { now: T0 });
    expect(verifySessionToken(old, [OTHER, SECRET], { now: T0 })).toMatchObject({ ok: true, sub: 'old' });
    expect(verifySessionToken(fresh, [OTHER, SECRET], { now: T0 })).toMatchObject({ ok: true, sub: 'new' });
    expect(verifySessionToken(old, [OTHER], { now: T0 })).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('a secret under 32 bytes, an empty sub or a bad lifetime is a ConfigError that never quotes the secret', () => {
    const short = 'short-secret-of-28-bytes-xyz';
    expect(() => createSessionToken({ sub: 'u', expiresIn: '1h' }, short)).toThrow(ConfigError);
    try {
      verifySessionToken('vx1.a.b', short);
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).toMatch(/secret: must be at least 32 bytes \(got 28\)/);
      expect(String((error as Error).message)).not.toContain(short);
    }
    expect(() => tokenAuth(short)).toThrow(/at least 32 bytes/);
    expect(() => createSessionToken({ sub: '', expiresIn: '1h' }, SECRET)).toThrow(/sub: must be a non-empty string/);
    expect(() => createSessionToken({ sub: 'u', expiresIn: 'soon' }, SECRET)).toThrow(/expiresIn: must be a positive number of ms or a duration/);
    expect(() => createSessionToken({ sub: 'u', expiresIn: -5 }, SECRET)).toThrow(ConfigError);
  });
});

describe('tokenAuth through a real server', () => {
  let server: VoiceServer | undefined;
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server?.stop();
    server = undefined;
  });

  async function client(url: string): Promise<RawClient> {
    const c = new RawClient(url);
    clients.push(c);
    await c.opened();
    return c;
  }

  function hello(c: RawClient, token: string | undefined): void {
    c.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 }, ...(token === undefined ? {} : { token }) });
  }

  it("hello with a good token is ready under the token's sub; a bad, expired or missing one is auth_failed (4401)", async () => {
    const refusals: string[] = [];
    server = new VoiceServer({
      port: 0,
      vad: false,
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Hi.'] }), tts: new FakeTts() },
      auth: tokenAuth([OTHER, SECRET], { onRefused: (reason) => refusals.push(reason) }),
      // One session per principal: a second session of the same sub shows the principal is the sub.
      session: { limits: { maxPerPrincipal: 1 } },
    });
    const { url } = await server.start();

    const a = await client(url);
    hello(a, createSessionToken({ sub: 'alice', expiresIn: '5m' }, SECRET));
    expect(await a.next('session.ready')).toMatchObject({ sessionId: expect.any(String) });
    const again = await client(url);
    hello(again, createSessionToken({ sub: 'alice', expiresIn: '5m' }, OTHER));
    expect(await again.next('error')).toMatchObject({ code: 'session_limit', message: 'at most 1 sessions per account', fatal: true });
    const b = await client(url);
    hello(b, createSessionToken({ sub: 'bob', expiresIn: '5m' }, OTHER));
    await b.next('session.ready');

    const cases: [string | undefined, string][] = [
      [createSessionToken({ sub: 'carol', expiresIn: '5m' }, randomBytes(32)), 'bad_signature'],
      [createSessionToken({ sub: 'carol', expiresIn: 1000 }, SECRET, { now: Date.now() - 60_000 }), 'expired'],
      ['not-a-token', 'malformed'],
      [undefined, 'missing'],
    ];
    for (const [token, reason] of cases) {
      const c = await client(url);
      hello(c, token);
      expect(await c.next('error')).toEqual({ type: 'error', code: 'auth_failed', message: 'authentication failed', fatal: true });
      expect(await c.closed()).toBe(4401);
      expect(refusals.at(-1)).toBe(reason);
    }
    expect(server.sessions).toBe(2);
  });

  it('a valid token is also a bearer token for /metrics from a non-loopback caller (forwarded through a trusted proxy)', async () => {
    server = new VoiceServer({
      port: 0,
      vad: false,
      trustProxy: true,
      providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Hi.'] }), tts: new FakeTts() },
      auth: tokenAuth(SECRET),
    });
    const { port } = await server.start();
    const remote = { 'x-forwarded-for': '203.0.113.7' };
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: remote })).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { ...remote, authorization: 'Bearer vx1.x.y' } })).status).toBe(403);
    const token = createSessionToken({ sub: 'ops', expiresIn: '1m' }, SECRET);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { ...remote, authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});

describe('tokens in the CLI', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });
  const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

  function run(args: string[], env: NodeJS.ProcessEnv): { output: () => string; stdout: () => string; exited: Promise<number | null> } {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    return { output: () => output, stdout: () => stdout, exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
  }

  it('`token create` prints a token the secret verifies; `serve` with VOXSTATE_AUTH_SECRET accepts it and refuses a hello without one', async () => {
    const created = run(['token', 'create', '--sub', 'cli-user', '--expires-in', '1h', '--scope', 'voice'], { VOXSTATE_AUTH_SECRET: SECRET });
    expect(await created.exited).toBe(0);
    const token = created.stdout().trim();
    expect(verifySessionToken(token, SECRET)).toMatchObject({ ok: true, sub: 'cli-user', scopes: ['voice'] });
    expect(created.output()).not.toContain(SECRET);

    const serve = run(['serve', '--port', '0'], { VOXSTATE_AUTH_SECRET: SECRET, VOXSTATE_AVATAR: 'off' });
    const started = Date.now();
    let match: RegExpMatchArray | null = null;
    while ((match = serve.output().match(/listening: (ws:\/\/127\.0\.0\.1:\d+\/ws)/)) === null) {
      if (Date.now() - started > 30_000) throw new Error(`the CLI did not start:\n${serve.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(serve.output()).toMatch(/AUTH session tokens signed with VOXSTATE_AUTH_SECRET/);
    const url = match[1] as string;
    const good = new RawClient(url);
    expect(await good.hello(undefined, token)).toMatchObject({ type: 'session.ready' });
    await good.close();
    const anonymous = new RawClient(url);
    await anonymous.opened();
    anonymous.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } });
    expect(await anonymous.next('error')).toMatchObject({ code: 'auth_failed' });
    expect(await anonymous.closed()).toBe(4401);
    expect(serve.output()).not.toContain(SECRET);
    expect(serve.output()).not.toContain(token);
  }, 40_000);

  it('a short VOXSTATE_AUTH_SECRET stops serve and token create with an error naming the variable; token create needs --sub', async () => {
    // Three processes at once: each is a separate start-up.
    const serve = run(['serve', '--port', '0'], { VOXSTATE_AUTH_SECRET: 'too-short', VOXSTATE_AVATAR: 'off' });
    const noSecret = run(['token', 'create', '--sub', 'x'], {});
    const noSub = run(['token', 'create'], { VOXSTATE_AUTH_SECRET: SECRET });
    expect(await Promise.all([serve.exited, noSecret.exited, noSub.exited])).toEqual([1, 1, 1]);
    expect(serve.output()).toMatch(/config_invalid: VOXSTATE_AUTH_SECRET: must be at least 32 bytes \(got 9\)/);
    expect(serve.output()).not.toContain('too-short');
    expect(noSecret.output()).toMatch(/VOXSTATE_AUTH_SECRET: is not set/);
    expect(noSub.output()).toMatch(/--sub: is required/);
  }, 40_000);
});
