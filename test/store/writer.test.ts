/**
 * SessionStoreWriter, one session's writes: ordered, one in flight, the latest record wins, failures
 * retried with backoff (logged without the record), a stale refusal ending the writes for good.
 * The store is a real MemorySessionStore; subclasses only hold a write back or make it fail the way
 * Redis does when it is away.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SessionStoreError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { SessionStoreWriter } from '../../src/session/store-writer.js';
import { MemorySessionStore, type SessionRecordData, type SessionWrite } from '../../src/session/store.js';

function record(text: string): SessionRecordData {
  const now = Date.now();
  return { sessionId: 's', resumeTokenHash: 'f'.repeat(64), history: [{ role: 'user', content: text }], audio: { transport: 'websocket', sampleRate: 16_000 }, createdAt: now, updatedAt: now, expiresAt: now + 60_000 };
}

/** Holds each write until `release()`, and counts how many run at once. */
class GatedStore extends MemorySessionStore {
  inFlight = 0;
  maxInFlight = 0;
  readonly written: string[] = [];
  #gate: (() => void) | undefined;

  release(): void {
    this.#gate?.();
  }

  override async write(write: SessionWrite): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise<void>((resolve) => (this.#gate = resolve));
    this.inFlight--;
    this.written.push(write.record.history[0]?.content ?? '');
    return super.write(write);
  }
}

/** Fails the first `failures` writes as an unreachable Redis does — after storing one of them, as a reply lost in transit. */
class FlakyStore extends MemorySessionStore {
  failures: number;
  readonly landedButLost: boolean;
  constructor(failures: number, landedButLost = false) {
    super({ nodeId: 'n' });
    this.failures = failures;
    this.landedButLost = landedButLost;
  }

  override async write(write: SessionWrite): Promise<number> {
    if (this.failures > 0) {
      this.failures--;
      if (this.landedButLost) await super.write(write);
      throw new SessionStoreError('session store: connect ECONNREFUSED 127.0.0.1:6379');
    }
    return super.write(write);
  }
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines: () => text };
}

describe('SessionStoreWriter', () => {
  it('one write in flight; records given meanwhile collapse into the latest', async () => {
    const store = new GatedStore({ nodeId: 'n' });
    const writer = new SessionStoreWriter({ store, sessionId: 's', version: 0, logger: capture().logger, onMoved: () => undefined });
    writer.write(record('one'));
    writer.write(record('two'));
    writer.write(record('three'));
    await expect.poll(() => store.inFlight).toBe(1);
    store.release();
    await expect.poll(() => store.written.length).toBe(1);
    await expect.poll(() => store.inFlight).toBe(1);
    store.release();
    await writer.settle();
    expect(store.written).toEqual(['one', 'three']);
    expect(store.maxInFlight).toBe(1);
    const stored = await store.get('s');
    expect(stored?.status === 'live' ? [stored.record.history[0]?.content, stored.record.version] : stored).toEqual(['three', 2]);
    expect(writer.version).toBe(2);
  });

  it('a failed write is retried with backoff until it lands; the log has the error, never the record', async () => {
    const store = new FlakyStore(3);
    const log = capture();
    const writer = new SessionStoreWriter({ store, sessionId: 's', version: 0, logger: log.logger, retry: { initialDelayMs: 10, maxDelayMs: 40 }, onMoved: () => undefined });
    writer.write(record('secret history'));
    await writer.settle();
    const stored = await store.get('s');
    expect(stored?.status === 'live' ? stored.record.history[0]?.content : stored).toBe('secret history');
    const lines = log.lines().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((l) => [l['msg'], l['code'], l['attempt']])).toEqual([
      ['session store write failed; retrying', 'session_store_unavailable', 1],
      ['session store write failed; retrying', 'session_store_unavailable', 2],
      ['session store write failed; retrying', 'session_store_unavailable', 3],
    ]);
    expect(lines.map((l) => l['retryInMs'])).toEqual([10, 20, 40]);
    expect(log.lines()).not.toContain('secret history');
    expect(log.lines()).not.toContain('f'.repeat(64));
  });

  it('a write that landed although it failed in transit is not taken for a takeover when retried or superseded', async () => {
    const store = new FlakyStore(1, true);
    let moved = 0;
    const writer = new SessionStoreWriter({ store, sessionId: 's', version: 0, logger: capture().logger, retry: { initialDelayMs: 30, maxDelayMs: 30 }, onMoved: () => moved++ });
    writer.write(record('first'));
    // A newer record comes while the first one's retry waits.
    await new Promise((resolve) => setTimeout(resolve, 5));
    writer.write(record('second'));
    await writer.settle();
    expect(moved).toBe(0);
    const stored = await store.get('s');
    expect(stored?.status === 'live' ? [stored.record.history[0]?.content, stored.record.version] : stored).toEqual(['second', 2]);
  });

  it('a stale refusal: the writer says the session moved, once, and writes nothing more (not even a tombstone)', async () => {
    const store = new MemorySessionStore({ nodeId: 'a' });
    let moved = 0;
    const writer = new SessionStoreWriter({ store, sessionId: 's', version: 0, logger: capture().logger, onMoved: () => moved++ });
    writer.write(record('mine'));
    await writer.settle();
    const other = store.forNode('b');
    await other.claim('s', { expectedVersion: 1, resumeTokenHash: 'e'.repeat(64), expiresAt: Date.now() + 60_000, updatedAt: Date.now() });
    writer.write(record('late'));
    await writer.settle();
    writer.write(record('later'));
    writer.end('expired');
    await writer.settle();
    expect([moved, writer.moved]).toEqual([1, true]);
    expect(await store.get('s')).toMatchObject({ status: 'live', record: { nodeId: 'b', version: 2, history: [{ content: 'mine' }] } });
  });

  it('end turns the record into a tombstone after the writes before it; settle({ lastChance }) gives up on a store that is away', async () => {
    const store = new MemorySessionStore({ nodeId: 'a' });
    const writer = new SessionStoreWriter({ store, sessionId: 's', version: 0, logger: capture().logger, onMoved: () => undefined });
    writer.write(record('hello'));
    writer.end('closed');
    await writer.settle();
    expect(await store.get('s')).toMatchObject({ status: 'ended', reason: 'closed' });

    const away = new FlakyStore(Number.POSITIVE_INFINITY);
    const stuck = new SessionStoreWriter({ store: away, sessionId: 's', version: 0, logger: capture().logger, retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 }, onMoved: () => undefined });
    stuck.finish(record('bye'));
    await stuck.settle({ lastChance: true });
    expect(stuck.idle).toBe(true);
    expect(await away.get('s')).toBeUndefined();
  });
});
