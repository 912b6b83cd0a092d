/**
 * Server-wide concurrency limits on provider calls (src/providers/limits.ts): the real p-queue,
 * the fake providers, real time.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, isVoxError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { CallGate, limitProviders } from '../../src/providers/limits.js';
import type { LlmProvider } from '../../src/providers/types.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function collect(llm: LlmProvider, signal: AbortSignal): Promise<string> {
  let text = '';
  for await (const event of llm.stream({ messages: [{ role: 'user', content: 'hi' }], signal })) if (event.type === 'text') text += event.text;
  return text;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isVoxError(error)) return error.code;
    throw error;
  }
  return 'none';
}

function providers(llm: LlmProvider) {
  return { stt: new FakeStt({ recognize: () => 'x' }), llm, tts: new FakeTts() };
}

describe('providers.limits', () => {
  it('runs at most `llm` completions at once, the rest in arrival order, and every one completes', async () => {
    let running = 0;
    let most = 0;
    const order: number[] = [];
    let n = 0;
    const inner: LlmProvider = {
      name: 'counting',
      async *stream() {
        const mine = ++n;
        running++;
        most = Math.max(most, running);
        order.push(mine);
        try {
          await delay(30);
          yield { type: 'text', text: `r${mine}` };
        } finally {
          running--;
        }
      },
    };
    const queued: number[] = [];
    const { llm } = limitProviders(providers(inner), { llm: 2 }, { onQueued: (_kind, _provider, seconds) => queued.push(seconds) });
    const results = await Promise.all(Array.from({ length: 6 }, () => collect(llm, new AbortController().signal)));
    expect(results.sort()).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(most).toBe(2);
    expect(order).toEqual([1, 2, 3, 4, 5, 6]);
    // Every call's wait was observed: two got a slot at once, the last two waited two calls' worth.
    expect(queued).toHaveLength(6);
    expect(queued.filter((s) => s < 0.01)).toHaveLength(2);
    expect(Math.max(...queued)).toBeGreaterThanOrEqual(0.05);
  });

  it('a waiting call that is aborted leaves the queue at once and never starts', async () => {
    const gate = new CallGate('llm', 1, 10_000);
    const holder = new AbortController();
    const release = await gate.acquire(holder.signal, 'p');
    const waiter = new AbortController();
    const waiting = gate.acquire(waiter.signal, 'p');
    expect(gate.waiting).toBe(1);
    waiter.abort();
    expect(gate.waiting).toBe(0); // synchronously: nothing of the cancelled turn stays queued
    expect(await codeOf(waiting)).toBe('provider_aborted');
    // The next caller gets the slot as soon as the holder is done, not after a ghost entry.
    const next = gate.acquire(new AbortController().signal, 'p');
    release();
    await expect(next).resolves.toBeTypeOf('function');
    expect(gate.running).toBe(1);
  });

  it('an aborted running call gives its slot back even if its provider never stops', async () => {
    // A provider that ignores the signal: without the release on abort it would hold its slot for ever.
    let starts = 0;
    const stubborn: LlmProvider = {
      name: 'stubborn',
      async *stream() {
        starts++;
        await new Promise(() => undefined);
        yield { type: 'text', text: 'never' };
      },
    };
    const { llm } = limitProviders(providers(stubborn), { llm: 1 });
    const first = new AbortController();
    void llm.stream({ messages: [], signal: first.signal })[Symbol.asyncIterator]().next().catch(() => undefined);
    const second = new AbortController();
    void llm.stream({ messages: [], signal: second.signal })[Symbol.asyncIterator]().next().catch(() => undefined);
    await delay(20);
    expect(starts).toBe(1); // the second call waits for the slot
    first.abort();
    await delay(20);
    expect(starts).toBe(2); // it got the slot the cancelled call left
    second.abort();
  });

  it('a wait longer than queueTimeoutMs fails with provider_timeout and is observed', async () => {
    const queued: number[] = [];
    const { tts } = limitProviders(providers(new FakeLlm({ respond: () => [] })), { tts: 1, queueTimeoutMs: 80 }, { onQueued: (kind, provider, s) => queued.push(kind === 'tts' && provider === 'fake-tts' ? s : -1) });
    const holder = new AbortController();
    const slow = tts.synthesize('one two three four five', { signal: holder.signal })[Symbol.asyncIterator]();
    await slow.next(); // holds the only slot
    const started = performance.now();
    const waiting = (async () => {
      for await (const _ of tts.synthesize('hello', { signal: new AbortController().signal })) {
        // never reached
      }
    })();
    expect(await codeOf(waiting)).toBe('provider_timeout');
    expect(performance.now() - started).toBeGreaterThanOrEqual(70);
    expect(queued).toHaveLength(2);
    expect(queued[1]).toBeGreaterThanOrEqual(0.07);
    holder.abort();
    await slow.return?.();
  });

  it('batch transcribe is limited too and kinds without a limit pass through untouched', async () => {
    const stt = new FakeStt({ recognize: () => 'heard', latencyMs: 20 });
    const llm = new FakeLlm({ respond: () => ['ok'] });
    const tts = new FakeTts();
    const limited = limitProviders({ stt, llm, tts }, { stt: 1 });
    expect(limited.llm).toBe(llm);
    expect(limited.tts).toBe(tts);
    expect(limited.stt.name).toBe('fake-stt');
    const audio = { samples: new Float32Array(160), sampleRate: 16_000 };
    const started = performance.now();
    const texts = await Promise.all([1, 2, 3].map(() => limited.stt.transcribe(audio, { signal: new AbortController().signal })));
    expect(texts.map((t) => t.text)).toEqual(['heard', 'heard', 'heard']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(55); // one after the other
  });

  it('refuses limits that are not positive integers', () => {
    const p = providers(new FakeLlm({ respond: () => [] }));
    expect(() => limitProviders(p, { llm: 0 })).toThrow(ConfigError);
    expect(() => limitProviders(p, { tts: 1.5 })).toThrow(/providers\.limits\.tts/);
    expect(() => limitProviders(p, { stt: 1, queueTimeoutMs: -1 })).toThrow(/queueTimeoutMs/);
  });
});
