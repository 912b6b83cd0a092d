/**
 * VoiceServers sharing a session store: resume across servers (claimed, token rotated, history and
 * principal kept, limits applied), tombstones answered alike by every server, a node that lost its
 * session to another one ending its copy without writing over it, and writes that survive a Redis
 * restart in the middle of a session. Real servers on loopback, a real redis-server, fake providers.
 */
import { createHash, randomUUID } from 'node:crypto';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VoxClient } from '../../src/client/index.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { RedisSessionStore } from '../../src/session/redis-store.js';
import { MemorySessionStore, type SessionStore, type StoredSession } from '../../src/session/store.js';
import { delay, RawClient } from '../server/helpers.js';
import { RedisServer } from './redis-server.js';

let redis: RedisServer;
const servers: VoiceServer[] = [];
const clients: RawClient[] = [];
const stores: SessionStore[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  for (const store of stores.splice(0)) await store.close?.();
});
afterAll(async () => {
  await redis?.destroy();
});

/** A node's own store on the shared redis-server (keys of this test only). */
function redisStore(prefix: string, nodeId: string): RedisSessionStore {
  const store = new RedisSessionStore({ connection: redis.url, keyPrefix: prefix, nodeId, commandTimeoutMs: 1000 });
  stores.push(store);
  return store;
}

interface Node {
  readonly server: VoiceServer;
  readonly url: string;
  readonly llm: FakeLlm;
}

/** The agent says how many messages it was given: a reply that proves which history it saw. */
async function node(session: VoiceServerOptions['session'], options: Partial<VoiceServerOptions> = {}): Promise<Node> {
  const llm = new FakeLlm({ respond: (messages) => [`I see ${messages.filter((m) => m.role !== 'system').length} messages.`] });
  const server = new VoiceServer({ port: 0, vad: false, providers: { stt: new FakeStt({ recognize: () => '' }), llm, tts: new FakeTts({ msPerWord: 5 }) }, session, ...options });
  servers.push(server);
  const { url } = await server.start();
  return { server, url, llm };
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

async function say(c: RawClient, text: string): Promise<string> {
  const before = c.of('reply.done').length;
  c.send({ type: 'user.text', text });
  return String((await c.next('reply.done', () => c.of('reply.done').length > before))['text']);
}

async function resume(url: string, sessionId: unknown, resumeToken: unknown): Promise<RawClient> {
  const c = client(url);
  await c.opened();
  c.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken });
  await Promise.race([c.next('session.resumed'), c.next('error')]);
  return c;
}

function live(stored: StoredSession | undefined): { version: number; nodeId: string; history: number } | undefined {
  return stored?.status === 'live' ? { version: stored.record.version, nodeId: stored.record.nodeId, history: stored.record.history.length } : undefined;
}

const sha = (token: unknown): string => createHash('sha256').update(String(token)).digest('hex');

describe('resume across servers sharing a Redis store', () => {
  it('the second server claims the record, restores history and answers with historyLength and a new token; the old token stops working', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const a = await node({ store: redisStore(prefix, 'node-a'), ttlMs: 5000 });
    const c = client(a.url);
    const ready = await c.hello();
    expect(await say(c, 'my name is Ada')).toBe('I see 1 messages.');
    expect(await say(c, 'I like tea')).toBe('I see 3 messages.');
    const storeB = redisStore(prefix, 'node-b');
    await expect.poll(async () => live(await storeB.get(String(ready['sessionId'])))?.history).toBe(4);
    c.socket.terminate();
    await c.closed();

    const b = await node({ store: storeB, ttlMs: 5000 });
    const back = await resume(b.url, ready['sessionId'], ready['resumeToken']);
    const resumed = await back.next('session.resumed');
    expect(resumed).toMatchObject({ sessionId: ready['sessionId'], state: 'listening', historyLength: 4 });
    expect(typeof resumed['resumeToken']).toBe('string');
    expect(resumed['resumeToken']).not.toBe(ready['resumeToken']);
    expect(live(await storeB.get(String(ready['sessionId'])))).toMatchObject({ nodeId: 'node-b' });
    // The next turn on b continues the conversation: its LLM request holds a's history.
    expect(await say(back, 'what is my name?')).toBe('I see 5 messages.');
    expect(b.llm.requests[0]?.filter((m) => m.role !== 'system').map((m) => m.content)).toEqual(['my name is Ada', 'I see 1 messages.', 'I like tea', 'I see 3 messages.', 'what is my name?']);

    // The answer may not have reached the client: the token it resumed with stays valid until it
    // uses the new one. It does (in-process on b this time), and is rotated again.
    back.socket.terminate();
    await back.closed();
    const again = await resume(b.url, ready['sessionId'], resumed['resumeToken']);
    const second = await again.next('session.resumed');
    expect(second).toMatchObject({ historyLength: 6 });
    expect(second['resumeToken']).not.toBe(resumed['resumeToken']);
    await expect.poll(async () => {
      const stored = await storeB.get(String(ready['sessionId']));
      return stored?.status === 'live' ? stored.record.resumeTokenHash : undefined;
    }).toBe(sha(second['resumeToken'])); // attached: the record names the newest token only
    again.socket.terminate();
    await again.closed();
    // Suspended: the record also names the one the client resumed with (its answer may be lost).
    await expect.poll(async () => {
      const stored = await storeB.get(String(ready['sessionId']));
      return stored?.status === 'live' ? stored.record.resumeTokenHash : undefined;
    }).toBe(`${sha(second['resumeToken'])},${sha(resumed['resumeToken'])}`);
    // That retired the first token, on every server.
    for (const url of [a.url, b.url]) {
      const old = await resume(url, ready['sessionId'], ready['resumeToken']);
      expect(await old.next('error')).toMatchObject({ code: 'session_resume_refused', fatal: true });
    }
  });

  it('a resume whose answer is lost does not lock the client out: the token it sent keeps working until it uses the new one, then both older ones are dead', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const a = await node({ store: redisStore(prefix, 'node-a'), ttlMs: 5000 });
    const c = client(a.url);
    const ready = await c.hello();
    expect(await say(c, 'hello')).toBe('I see 1 messages.');
    c.socket.terminate();
    await c.closed();
    // Resumed with T1; the answer (T2) "never arrives": the socket dies with it.
    const lost = await resume(a.url, ready['sessionId'], ready['resumeToken']);
    const t2 = (await lost.next('session.resumed'))['resumeToken'];
    lost.socket.terminate();
    await lost.closed();
    // The client only has T1: it still resumes (T3), and the conversation is all there.
    const retry = await resume(a.url, ready['sessionId'], ready['resumeToken']);
    const t3msg = await retry.next('session.resumed');
    expect(t3msg).toMatchObject({ historyLength: 2 });
    const t3 = t3msg['resumeToken'];
    retry.socket.terminate();
    await retry.closed();
    // T2 was never used and is superseded; the client resumes with T3, which retires T1.
    const current = await resume(a.url, ready['sessionId'], t3);
    expect(await current.next('session.resumed')).toMatchObject({ historyLength: 2 });
    current.socket.terminate();
    await current.closed();
    for (const dead of [ready['resumeToken'], t2]) {
      const old = await resume(a.url, ready['sessionId'], dead);
      expect(await old.next('error')).toMatchObject({ code: 'session_resume_refused', fatal: true });
    }
  });

  it('a session that expired on one server is session_expired on another; one the client closed is session_not_found', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const a = await node({ store: redisStore(prefix, 'node-a'), ttlMs: 150 });
    const b = await node({ store: redisStore(prefix, 'node-b'), ttlMs: 150 });
    const c = client(a.url);
    const ready = await c.hello();
    await say(c, 'hello');
    c.socket.terminate();
    await c.closed();
    await expect.poll(() => a.server.sessions, { timeout: 5000 }).toBe(0);
    const late = await resume(b.url, ready['sessionId'], ready['resumeToken']);
    expect(await late.next('error')).toMatchObject({ code: 'session_expired', fatal: true });
    expect(await late.closed()).toBe(4408);

    const d = client(a.url);
    const closedReady = await d.hello();
    await say(d, 'bye');
    d.send({ type: 'session.close' });
    await d.closed();
    await expect.poll(async () => (await redisStore(prefix, 'probe').get(String(closedReady['sessionId'])))?.status).toBe('ended');
    const gone = await resume(b.url, closedReady['sessionId'], closedReady['resumeToken']);
    expect(await gone.next('error')).toMatchObject({ code: 'session_not_found', fatal: true });
  });

  it('a node whose session was resumed elsewhere ends its copy (session_moved to a client still on it) and never writes over the other node', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const storeA = redisStore(prefix, 'node-a');
    const storeB = redisStore(prefix, 'node-b');
    const a = await node({ store: storeA, ttlMs: 5000 });
    const b = await node({ store: storeB, ttlMs: 5000 });
    const onA = client(a.url);
    const ready = await onA.hello();
    const sessionId = String(ready['sessionId']);
    await say(onA, 'one');
    await expect.poll(async () => live(await storeB.get(sessionId))?.history).toBe(2);
    // The client's socket to a looks alive to a (a half-open connection); it resumes on b.
    const onB = await resume(b.url, sessionId, ready['resumeToken']);
    expect(await onB.next('session.resumed')).toMatchObject({ historyLength: 2 });
    const claimed = live(await storeB.get(sessionId));
    expect(claimed).toMatchObject({ nodeId: 'node-b' });
    // a's copy takes one more turn: its write is refused, and its client is told the session moved.
    onA.send({ type: 'user.text', text: 'two' });
    expect(await onA.next('error', (m) => m['code'] === 'session_moved')).toMatchObject({ fatal: true });
    expect(await onA.closed()).toBe(4409);
    await expect.poll(() => a.server.sessions).toBe(0);
    // Nothing of a's reached the record: b's version and owner, b's history.
    expect(live(await storeB.get(sessionId))).toEqual(claimed);
    expect(await say(onB, 'three')).toBe('I see 3 messages.');
    await expect.poll(async () => live(await storeB.get(sessionId))).toMatchObject({ nodeId: 'node-b', history: 4 });
    // a stopping writes nothing either (its copy is gone, no tombstone).
    await a.server.stop();
    expect(live(await storeB.get(sessionId))).toMatchObject({ nodeId: 'node-b', history: 4 });
  });

  it('a restored session keeps its principal and counts against that principal’s limit on the new server', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const auth = (token: string | undefined) => (token === undefined ? false : { principal: token });
    const a = await node({ store: redisStore(prefix, 'node-a'), ttlMs: 5000 }, { auth });
    const storeB = redisStore(prefix, 'node-b');
    const b = await node({ store: storeB, ttlMs: 5000, limits: { maxPerPrincipal: 1 } }, { auth });
    const alice = client(a.url);
    const ready = await alice.hello(undefined, 'alice');
    await say(alice, 'hi');
    await expect.poll(async () => {
      const stored = await storeB.get(String(ready['sessionId']));
      return stored?.status === 'live' ? stored.record.principal : undefined;
    }).toBe('alice');
    alice.socket.terminate();
    await alice.closed();
    // alice already has a session on b: the restored one would be her second there.
    const other = client(b.url);
    await other.hello(undefined, 'alice');
    const refused = await resume(b.url, ready['sessionId'], ready['resumeToken']);
    expect(await refused.next('error')).toMatchObject({ code: 'session_limit', fatal: true });
    // Refused before the claim: the record is still a's, and the token still works once the limit allows.
    expect(live(await storeB.get(String(ready['sessionId'])))).toMatchObject({ nodeId: 'node-a' });
    other.send({ type: 'session.close' });
    await other.closed();
    await expect.poll(() => b.server.sessions).toBe(0);
    const back = await resume(b.url, ready['sessionId'], ready['resumeToken']);
    expect(await back.next('session.resumed')).toMatchObject({ historyLength: 2 });
    // Now counted as alice's on b.
    const third = client(b.url);
    await third.opened();
    third.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', sampleRate: 16000, format: 'pcm16' }, token: 'alice' });
    expect(await third.next('error')).toMatchObject({ code: 'session_limit' });
  });

  it('Redis restarting mid-session: the session keeps talking, the writes resume and land, nothing committed is lost', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const storeA = redisStore(prefix, 'node-a');
    const a = await node({ store: storeA, ttlMs: 5000, storeRetry: { initialDelayMs: 50, maxDelayMs: 200 } });
    const c = client(a.url);
    const ready = await c.hello();
    const sessionId = String(ready['sessionId']);
    await say(c, 'one');
    await expect.poll(async () => live(await storeA.get(sessionId))?.history).toBe(2);
    await redis.stop();
    // Redis is gone: the conversation goes on regardless.
    expect(await say(c, 'two')).toBe('I see 3 messages.');
    expect(await say(c, 'three')).toBe('I see 5 messages.');
    await delay(300); // a few failed attempts, retried with backoff
    await redis.restart();
    // Turn one survived the restart (append-only file); the latest record (three turns) lands.
    await expect.poll(async () => live(await storeA.get(sessionId).catch(() => undefined))?.history, { timeout: 10_000 }).toBe(6);
    expect(live(await storeA.get(sessionId))).toMatchObject({ nodeId: 'node-a' });
    // And a resume elsewhere finds all of it.
    c.socket.terminate();
    await c.closed();
    const b = await node({ store: redisStore(prefix, 'node-b'), ttlMs: 5000 });
    const back = await resume(b.url, sessionId, ready['resumeToken']);
    expect(await back.next('session.resumed')).toMatchObject({ historyLength: 6 });
  });

  it('a resume while the store is unreachable is session_store_unavailable with a close code the client retries', async () => {
    const prefix = `srv:${randomUUID()}:`;
    const a = await node({ store: redisStore(prefix, 'node-a'), ttlMs: 5000 });
    const c = client(a.url);
    const ready = await c.hello();
    await say(c, 'one');
    await a.server.stop();
    await redis.stop();
    try {
      const b = await node({ store: redisStore(prefix, 'node-b'), ttlMs: 5000 });
      const back = await resume(b.url, ready['sessionId'], ready['resumeToken']);
      expect(await back.next('error')).toMatchObject({ code: 'session_store_unavailable', fatal: true });
      expect(await back.closed()).toBe(4503);
    } finally {
      await redis.restart();
    }
  });
});

/** A loopback TCP proxy in front of a server: `cut()` drops every connection through it, as a network drop would. */
async function proxy(target: string): Promise<{ url: string; cut: () => void; close: () => Promise<void> }> {
  const { port, pathname } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createNetServer((inbound) => {
    const outbound = connect(Number(port), '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${address.port}${pathname}`,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('resume token rotation', () => {
  it('the SDK resumes twice in a row: each resume issues a new token, the client uses it for the next one, spent tokens are refused', async () => {
    const a = await node({ store: new MemorySessionStore(), ttlMs: 5000 });
    const line = await proxy(a.url);
    const vox = new VoxClient({ url: line.url, audio: { transport: 'websocket', sampleRate: 16000 }, heartbeatMs: 0, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const replies: string[] = [];
    const tokens: string[] = [];
    vox.on('resumed', (m) => {
      if (m.resumeToken !== undefined) tokens.push(m.resumeToken);
    });
    vox.on('message', (m) => {
      if (m.type === 'reply.done') replies.push(m.text);
    });
    try {
      const ready = await vox.connect();
      tokens.push(ready.resumeToken);
      vox.sendText('hello');
      await expect.poll(() => replies.length, { timeout: 5000 }).toBe(1);
      for (let drop = 1; drop <= 2; drop++) {
        line.cut();
        await expect.poll(() => tokens.length, { timeout: 5000 }).toBe(drop + 1);
      }
      expect(new Set(tokens).size).toBe(3);
      // The session survived both drops, history and all.
      vox.sendText('still there?');
      await expect.poll(() => replies, { timeout: 5000 }).toEqual(['I see 1 messages.', 'I see 3 messages.']);
      // The line goes down for good: the session waits, suspended, for a resume.
      await line.close();
      // Using T3 retired T1 (T2, the token the client resumed with last, would still work: the
      // client might not have received T3).
      const thief = await resume(a.url, ready.sessionId, tokens[0]);
      expect(await thief.next('error')).toMatchObject({ code: 'session_resume_refused' });
      // The current token does resume it (once the server has seen the drop); that retires T2.
      const current = tokens[2];
      let fourth: string | undefined;
      await expect
        .poll(async () => {
          const c = await resume(a.url, ready.sessionId, current);
          const answer = c.of('session.resumed')[0];
          if (answer !== undefined) {
            fourth = String(answer['resumeToken']);
            c.socket.terminate();
            await c.closed();
          }
          return answer === undefined ? 0 : 1;
        }, { timeout: 5000 })
        .toBe(1);
      expect(fourth).toBeDefined();
      await expect
        .poll(async () => {
          const late = await resume(a.url, ready.sessionId, tokens[1]);
          return (await late.next('error'))['code'];
        }, { timeout: 5000 })
        .toBe('session_resume_refused');
    } finally {
      await vox.close();
      await line.close();
    }
  });

  it('historyLength in session.resumed counts the messages of a session resumed in-process', async () => {
    const a = await node({ ttlMs: 5000 });
    const c = client(a.url);
    const ready = await c.hello();
    await say(c, 'one');
    await say(c, 'two');
    c.socket.terminate();
    await c.closed();
    const back = await resume(a.url, ready['sessionId'], ready['resumeToken']);
    expect(await back.next('session.resumed')).toMatchObject({ historyLength: 4, state: 'listening' });
  });
});
