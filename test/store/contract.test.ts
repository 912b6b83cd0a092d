/**
 * The SessionStore contract, written once and run against both stores: MemorySessionStore and
 * RedisSessionStore on a real redis-server. Two "nodes" are two store instances sharing the data
 * (forNode for the memory store, two connections for Redis).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStoreError, StaleSessionWriteError } from '../../src/errors.js';
import { RedisSessionStore } from '../../src/session/redis-store.js';
import { MemorySessionStore, type SessionRecordData, type SessionStore } from '../../src/session/store.js';
import { freePort, RedisServer } from './redis-server.js';

interface Nodes {
  readonly a: SessionStore;
  readonly b: SessionStore;
}

let redis: RedisServer;
const opened: SessionStore[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  for (const store of opened.splice(0)) await store.close?.();
  await redis?.destroy();
});

const kinds: { name: string; nodes: (tombstoneMs?: number) => Nodes }[] = [
  {
    name: 'MemorySessionStore',
    nodes: (tombstoneMs) => {
      const a = new MemorySessionStore({ nodeId: 'node-a', ...(tombstoneMs === undefined ? {} : { tombstoneMs }) });
      return { a, b: a.forNode('node-b') };
    },
  },
  {
    name: 'RedisSessionStore',
    nodes: (tombstoneMs) => {
      // A prefix per test: the tests share one redis-server.
      const keyPrefix = `test:${randomUUID()}:`;
      const make = (nodeId: string): RedisSessionStore => {
        const store = new RedisSessionStore({ connection: redis.url, nodeId, keyPrefix, ...(tombstoneMs === undefined ? {} : { tombstoneMs }) });
        opened.push(store);
        return store;
      };
      return { a: make('node-a'), b: make('node-b') };
    },
  },
];

function data(sessionId: string, overrides: Partial<SessionRecordData> = {}): SessionRecordData {
  const now = Date.now();
  return {
    sessionId,
    resumeTokenHash: 'a'.repeat(64),
    history: [
      { role: 'user', content: 'my name is Ada' },
      { role: 'assistant', content: 'Hello Ada.' },
    ],
    audio: { transport: 'websocket', sampleRate: 24_000 },
    principal: 'alice',
    playbook: { name: 'booking', stage: 'party', data: { party: { sizes: [4] }, empty: {} } },
    createdAt: now - 1000,
    updatedAt: now,
    expiresAt: now + 60_000,
    ...overrides,
  };
}

let ids = 0;
const writeId = (): string => `w${++ids}`;

async function staleError(promise: Promise<unknown>): Promise<StaleSessionWriteError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StaleSessionWriteError) return error;
    throw error;
  }
  throw new Error('the write was not refused');
}

for (const kind of kinds) {
  describe(`${kind.name} (the SessionStore contract)`, () => {
    it('get of a session never written is undefined', async () => {
      const { a } = kind.nodes();
      expect(await a.get('nobody')).toBeUndefined();
    });

    it('a written record reads back exactly, at version 1, stamped with the writing node', async () => {
      const { a, b } = kind.nodes();
      const record = data('s1');
      expect(await a.write({ record, expectedVersion: 0, writeId: writeId() })).toBe(1);
      expect(await b.get('s1')).toEqual({ status: 'live', record: { ...record, version: 1, nodeId: 'node-a' } });
      expect(await a.write({ record: { ...record, history: [...record.history, { role: 'user', content: 'again' }] }, expectedVersion: 1, writeId: writeId() })).toBe(2);
      const stored = await b.get('s1');
      expect(stored?.status === 'live' ? [stored.record.version, stored.record.history.length] : stored).toEqual([2, 3]);
    });

    it('a write that expects an old version is refused (session_moved) and changes nothing', async () => {
      const { a } = kind.nodes();
      await a.write({ record: data('s2'), expectedVersion: 0, writeId: writeId() });
      await a.write({ record: data('s2', { principal: 'bob' }), expectedVersion: 1, writeId: writeId() });
      const refused = await staleError(a.write({ record: data('s2', { principal: 'mallory' }), expectedVersion: 1, writeId: writeId() }));
      expect([refused.code, refused.expectedVersion, refused.storedVersion]).toEqual(['session_moved', 1, 2]);
      // Creating a session that exists already is refused the same way.
      expect((await staleError(a.write({ record: data('s2'), expectedVersion: 0, writeId: writeId() }))).storedVersion).toBe(2);
      const stored = await a.get('s2');
      expect(stored?.status === 'live' ? stored.record.principal : stored).toBe('bob');
    });

    it('a claim takes the session over: new owner and token hash, history kept, the old owner can no longer write', async () => {
      const { a, b } = kind.nodes();
      const record = data('s3');
      await a.write({ record, expectedVersion: 0, writeId: writeId() });
      const now = Date.now();
      expect(await b.claim('s3', { expectedVersion: 1, resumeTokenHash: 'b'.repeat(64), expiresAt: now + 30_000, updatedAt: now })).toBe(2);
      expect(await a.get('s3')).toEqual({ status: 'live', record: { ...record, resumeTokenHash: 'b'.repeat(64), expiresAt: now + 30_000, updatedAt: now, version: 2, nodeId: 'node-b' } });
      // Node a still thinks it holds version 1: its turn-boundary write and its tombstone are refused.
      expect((await staleError(a.write({ record, expectedVersion: 1, writeId: writeId() }))).storedVersion).toBe(2);
      await staleError(a.end('s3', { expectedVersion: 1, reason: 'expired', writeId: writeId() }));
      const stored = await b.get('s3');
      expect(stored?.status === 'live' ? [stored.record.nodeId, stored.record.version] : stored).toEqual(['node-b', 2]);
    });

    it('two nodes claiming the same version at once: exactly one wins', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s4'), expectedVersion: 0, writeId: writeId() });
      const now = Date.now();
      const results = await Promise.allSettled(
        [a, b, a, b].map((store, i) => store.claim('s4', { expectedVersion: 1, resumeTokenHash: String(i).repeat(64), expiresAt: now + 30_000, updatedAt: now })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => r.status === 'rejected' && r.reason instanceof StaleSessionWriteError)).toBe(true);
      const stored = await a.get('s4');
      expect(stored?.status === 'live' ? stored.record.version : stored).toBe(2);
    });

    it('concurrent writers at one version: one write lands, the others are refused, the record is one of theirs whole', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s5'), expectedVersion: 0, writeId: writeId() });
      const writers = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).write({ record: data('s5', { principal: `p${i}`, history: [{ role: 'user', content: `from ${i}` }] }), expectedVersion: 1, writeId: writeId() }));
      const results = await Promise.allSettled(writers);
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      const stored = await a.get('s5');
      // Atomic: the principal and the history come from the same write.
      expect(stored?.status === 'live' ? [stored.record.principal, stored.record.history[0]?.content, stored.record.version] : stored).toEqual([`p${winners[0]}`, `from ${winners[0]}`, 2]);
    });

    it('a write whose answer was lost is recognised as the node’s own when retried, and a newer one may follow it', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s6'), expectedVersion: 0, writeId: 'first' });
      // "lost" landed, but the node never heard (it still believes version 1).
      await a.write({ record: data('s6', { principal: 'lost' }), expectedVersion: 1, writeId: 'lost' });
      // The retry of the same write: nothing new is written.
      expect(await a.write({ record: data('s6', { principal: 'lost' }), expectedVersion: 1, writeId: 'lost' })).toBe(2);
      // A newer record from the same node, naming the unconfirmed write: it goes on top.
      expect(await a.write({ record: data('s6', { principal: 'newer' }), expectedVersion: 1, writeId: 'newer', unconfirmed: ['lost'] })).toBe(3);
      // Another node naming the same write ids gets nothing: the rule is for the node's own writes.
      await staleError(b.write({ record: data('s6'), expectedVersion: 1, writeId: 'newer', unconfirmed: ['lost'] }));
      const stored = await a.get('s6');
      expect(stored?.status === 'live' ? [stored.record.principal, stored.record.version] : stored).toEqual(['newer', 3]);
    });

    it('end leaves a tombstone: every node reads the session as ended (expired or closed), and nothing can write or claim it', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s7'), expectedVersion: 0, writeId: writeId() });
      await a.end('s7', { expectedVersion: 1, reason: 'expired', writeId: writeId() });
      expect(await b.get('s7')).toEqual({ status: 'ended', reason: 'expired', version: 2, nodeId: 'node-a' });
      await staleError(b.write({ record: data('s7'), expectedVersion: 2, writeId: writeId() }));
      await staleError(b.claim('s7', { expectedVersion: 2, resumeTokenHash: 'c'.repeat(64), expiresAt: Date.now() + 1000, updatedAt: Date.now() }));
      await a.write({ record: data('s8'), expectedVersion: 0, writeId: writeId() });
      await a.end('s8', { expectedVersion: 1, reason: 'closed', writeId: writeId() });
      expect(await b.get('s8')).toMatchObject({ status: 'ended', reason: 'closed' });
    });

    it('a record whose expiresAt passed reads as expired and cannot be claimed', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s9', { expiresAt: Date.now() - 1 }), expectedVersion: 0, writeId: writeId() });
      expect(await b.get('s9')).toEqual({ status: 'ended', reason: 'expired', version: 1, nodeId: 'node-a' });
      await staleError(b.claim('s9', { expectedVersion: 1, resumeTokenHash: 'c'.repeat(64), expiresAt: Date.now() + 1000, updatedAt: Date.now() }));
    });

    it('the store forgets a record tombstoneMs after it expired, and a tombstone tombstoneMs after the end', async () => {
      const { a } = kind.nodes(300);
      await a.write({ record: data('t1', { expiresAt: Date.now() + 200 }), expectedVersion: 0, writeId: writeId() });
      await a.write({ record: data('t2'), expectedVersion: 0, writeId: writeId() });
      await a.end('t2', { expectedVersion: 1, reason: 'closed', writeId: writeId() });
      expect(await a.get('t1')).toMatchObject({ status: 'live' });
      expect(await a.get('t2')).toMatchObject({ status: 'ended', reason: 'closed' });
      await expect.poll(async () => (await a.get('t1'))?.status, { timeout: 5000, interval: 20 }).toBe('ended');
      await expect.poll(async () => [await a.get('t1'), await a.get('t2')], { timeout: 5000, interval: 50 }).toEqual([undefined, undefined]);
    });

    it('delete forgets the session whatever its version', async () => {
      const { a, b } = kind.nodes();
      await a.write({ record: data('s10'), expectedVersion: 0, writeId: writeId() });
      await b.delete('s10');
      expect(await a.get('s10')).toBeUndefined();
    });
  });
}

describe('RedisSessionStore on its own', () => {
  it('keeps each session in one hash whose key expires in Redis, holding the token hash, never a token', async () => {
    const store = new RedisSessionStore({ connection: redis.url, nodeId: 'n1', keyPrefix: 'own:', tombstoneMs: 10_000 });
    opened.push(store);
    const record = data('k1', { expiresAt: Date.now() + 20_000 });
    await store.write({ record, expectedVersion: 0, writeId: 'w' });
    const pttl = await store.redis.pttl('own:k1');
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    const fields = await store.redis.hgetall('own:k1');
    expect(Object.keys(fields).sort()).toEqual(['body', 'createdAt', 'expiresAt', 'node', 'state', 'token', 'updatedAt', 'v', 'wid']);
    expect(fields['token']).toBe(record.resumeTokenHash);
    await store.end('k1', { expectedVersion: 1, reason: 'expired', writeId: 'e' });
    expect(await store.redis.pttl('own:k1')).toBeLessThanOrEqual(10_000);
    expect(Object.keys(await store.redis.hgetall('own:k1')).sort()).toEqual(['node', 'state', 'updatedAt', 'v', 'wid']);
  });

  it('a Redis that cannot be reached is a SessionStoreError (session_store_unavailable), not a hang', async () => {
    const store = new RedisSessionStore({ connection: `redis://127.0.0.1:${await freePort()}`, commandTimeoutMs: 1000 });
    try {
      const error = await store.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SessionStoreError);
      expect((error as SessionStoreError).code).toBe('session_store_unavailable');
    } finally {
      await store.close();
    }
  });

  it('close() quits the connection it opened and leaves a client passed in open', async () => {
    const own = new RedisSessionStore({ connection: redis.url, keyPrefix: 'close:' });
    await own.get('x');
    await own.close();
    expect(own.redis.status).toBe('end');
    const client = new Redis(redis.url);
    try {
      const shared = new RedisSessionStore({ connection: client, keyPrefix: 'close:' });
      await shared.write({ record: data('c1'), expectedVersion: 0, writeId: 'w' });
      await shared.close();
      expect(await client.exists('close:c1')).toBe(1);
    } finally {
      client.disconnect();
    }
  });
});
