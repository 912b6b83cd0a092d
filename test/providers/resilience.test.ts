import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { backoffDelay, fallback, withConcurrency, withResilience } from '../../src/providers/resilience.js';
import type { LlmEvent, LlmProvider, SttProvider, Transcript, TtsProvider } from '../../src/providers/types.js';
import { collect } from './helpers.js';

const signal = (): AbortSignal => new AbortController().signal;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An LLM whose n-th call does what `script[n]` says. */
function scriptedLlm(name: string, script: ('ok' | ProviderError)[]): LlmProvider & { calls: number } {
  const llm = {
    name,
    calls: 0,
    async *stream(): AsyncGenerator<LlmEvent> {
      const step = script[llm.calls++] ?? 'ok';
      if (step !== 'ok') throw step;
      yield { type: 'text', text: `from ${name}` };
    },
  };
  return llm;
}

const unavailable = (): ProviderError => new ProviderError('provider_unavailable', 'llm', 'down', { retryable: true });

describe('backoffDelay', () => {
  it('grows exponentially, is capped, and jitters within bounds', () => {
    expect(backoffDelay(0, { random: () => 0 })).toBe(125);
    expect(backoffDelay(0, { random: () => 1 })).toBe(250);
    expect(backoffDelay(3, { random: () => 1 })).toBe(2000);
    expect(backoffDelay(10, { random: () => 1 })).toBe(5000);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(2)));
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe('withResilience', () => {
  it('does not retry after the first event reached the caller', async () => {
    let calls = 0;
    const llm: LlmProvider = {
      name: 'flaky',
      async *stream() {
        calls++;
        yield { type: 'text', text: 'partial' };
        throw unavailable();
      },
    };
    const wrapped = withResilience(llm, { minDelayMs: 1 });
    await expect(collect(wrapped.stream({ messages: [], signal: signal() }))).rejects.toMatchObject({ code: 'provider_unavailable' });
    expect(calls).toBe(1);
  });

  it('gives up after `retries` and reports the last error', async () => {
    const llm = scriptedLlm('down', [unavailable(), unavailable(), unavailable()]);
    const wrapped = withResilience(llm, { retries: 2, minDelayMs: 1, maxDelayMs: 2 });
    await expect(collect(wrapped.stream({ messages: [], signal: signal() }))).rejects.toMatchObject({ code: 'provider_unavailable' });
    expect(llm.calls).toBe(3);
  });

  it('abort during the backoff stops at once with provider_aborted', async () => {
    const llm = scriptedLlm('down', [unavailable(), unavailable()]);
    const wrapped = withResilience(llm, { minDelayMs: 10_000, maxDelayMs: 10_000, random: () => 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const started = Date.now();
    await expect(collect(wrapped.stream({ messages: [], signal: controller.signal }))).rejects.toMatchObject({ code: 'provider_aborted' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a provider that ignores its signal still times out, and the gap timer does not run while the caller holds a chunk', async () => {
    const tts: TtsProvider = {
      name: 'slow',
      async *synthesize() {
        yield { pcm: new Int16Array(10), sampleRate: 16_000 };
        yield { pcm: new Int16Array(10), sampleRate: 16_000 };
        await sleep(10_000);
      },
    };
    const wrapped = withResilience(tts, { timeoutMs: 100, idleTimeoutMs: 100 });
    const chunks: unknown[] = [];
    const run = async (): Promise<void> => {
      for await (const c of wrapped.synthesize('x', { signal: signal() })) {
        chunks.push(c);
        await sleep(250); // a paused playout, longer than idleTimeoutMs
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'provider_timeout' });
    expect(chunks).toHaveLength(2);
  });
});

describe('fallback', () => {
  it('switches to the next provider on errors and recovers after the cool-down', async () => {
    let now = 0;
    const primary = scriptedLlm('primary', [unavailable(), 'ok']);
    const secondary = scriptedLlm('secondary', []);
    const chain = fallback([primary, secondary], { cooldownMs: 1000, now: () => now });
    const text = async (): Promise<string> =>
      (await collect(chain.stream({ messages: [], signal: signal() }))).map((e) => (e.type === 'text' ? e.text : '')).join('');
    expect(await text()).toBe('from secondary');
    expect(await text()).toBe('from secondary'); // primary is cooling down: not even tried
    expect(primary.calls).toBe(1);
    now = 1500;
    expect(await text()).toBe('from primary');
    expect(primary.calls).toBe(2);
  });

  it('an abort is not a failure: no switch, provider_aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const primary = scriptedLlm('primary', []);
    const secondary = scriptedLlm('secondary', []);
    await expect(collect(fallback([primary, secondary]).stream({ messages: [], signal: controller.signal }))).rejects.toMatchObject({
      code: 'provider_aborted',
    });
    expect(secondary.calls).toBe(0);
  });

  it('all failing: the last error', async () => {
    const chain = fallback([scriptedLlm('a', [unavailable()]), scriptedLlm('b', [new ProviderError('provider_auth', 'llm', 'no')])]);
    await expect(collect(chain.stream({ messages: [], signal: signal() }))).rejects.toMatchObject({ code: 'provider_auth' });
  });

  it('streaming STT replays the audio the failed provider consumed to the next one', async () => {
    const failing: SttProvider = {
      name: 'failing',
      async transcribe() {
        throw unavailable();
      },
      async *stream(audio) {
        let n = 0;
        for await (const _ of audio) if (++n === 2) throw new ProviderError('provider_unavailable', 'stt', 'dropped', { retryable: true });
      },
    };
    const counting: SttProvider = {
      name: 'counting',
      async transcribe() {
        return { text: '', final: true };
      },
      async *stream(audio): AsyncGenerator<Transcript> {
        let samples = 0;
        for await (const chunk of audio) samples += chunk.length;
        yield { text: `heard ${samples}`, final: true };
      },
    };
    async function* audio(): AsyncGenerator<Float32Array> {
      for (let i = 0; i < 5; i++) yield new Float32Array(160);
    }
    const results = await collect(fallback([failing, counting]).stream!(audio(), { signal: signal() }));
    expect(results).toEqual([{ text: 'heard 800', final: true }]);
  });

  it('a batch-only STT in the chain still serves stream() by transcribing at the end', async () => {
    const batch: SttProvider = { name: 'batch', transcribe: async (a) => ({ text: `${a.samples.length}`, final: true }) };
    const streaming: SttProvider = { ...batch, name: 'streaming', async *stream() { throw unavailable(); } };
    async function* audio(): AsyncGenerator<Float32Array> {
      yield new Float32Array(100);
      yield new Float32Array(60);
    }
    expect(await collect(fallback([streaming, batch]).stream!(audio(), { signal: signal() }))).toEqual([{ text: '160', final: true }]);
  });
});

describe('withConcurrency', () => {
  it('caps concurrent calls; a stream holds its slot until it ends', async () => {
    let active = 0;
    let peak = 0;
    const tts: TtsProvider = {
      name: 'busy',
      async *synthesize() {
        active++;
        peak = Math.max(peak, active);
        try {
          await sleep(20);
          yield { pcm: new Int16Array(1), sampleRate: 16_000 };
          await sleep(20);
        } finally {
          active--;
        }
      },
    };
    const capped = withConcurrency(tts, 2);
    await Promise.all(Array.from({ length: 6 }, () => collect(capped.synthesize('x', { signal: signal() }))));
    expect(peak).toBe(2);
  });

  it('a call aborted while queued leaves the queue with provider_aborted and frees nothing it did not take', async () => {
    let calls = 0;
    const stt: SttProvider = {
      name: 'one-at-a-time',
      async transcribe() {
        calls++;
        await sleep(100);
        return { text: 'ok', final: true };
      },
    };
    const capped = withConcurrency(stt, 1);
    const audio = { samples: new Float32Array(1), sampleRate: 16_000 };
    const first = capped.transcribe(audio, { signal: signal() });
    const controller = new AbortController();
    const second = capped.transcribe(audio, { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'provider_aborted' });
    expect(await first).toMatchObject({ text: 'ok' });
    expect(await capped.transcribe(audio, { signal: signal() })).toMatchObject({ text: 'ok' });
    expect(calls).toBe(2);
  });
});
