/**
 * Provider faults, injected at the provider boundary (fakes that hang, break mid-stream or return
 * audio that is not audio) under a real VoiceServer on loopback. Each must end in the documented
 * state — an `error` for the turn, then `listening`, and the next turn works — and leave nothing
 * behind once the session closes: no socket, timer or immediate, no session, no live actor.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { FakeLlm, FakeStt, FakeTts } from '../../src/providers/fake/index.js';
import { withResilience } from '../../src/providers/resilience.js';
import type { LlmProvider, Providers, TtsChunk, TtsProvider } from '../../src/providers/types.js';
import type { RawClient } from '../server/helpers.js';
import { baseline, describeLeaks, type FaultRow, leaksSince, printTable, startServer, type FaultServer } from './harness.js';

const rows: FaultRow[] = [];
afterAll(() => printTable('provider faults', rows));

const stt = (): FakeStt => new FakeStt({ recognize: () => '' });

/** Runs one fault: a session, `act` (which returns the state it saw reached), session.close, the leak check. */
async function fault(name: string, providers: Providers, act: (c: RawClient, setup: FaultServer) => Promise<string>): Promise<void> {
  const setup = await startServer({ vad: false, providers });
  try {
    const before = baseline();
    const c = setup.client();
    await c.hello();
    const state = await act(c, setup);
    if (c.closeCode === undefined) {
      c.send({ type: 'session.close' });
      expect(await c.closed()).toBe(1000);
    }
    const leaks = await leaksSince(before, setup);
    expect(setup.actors.length).toBeGreaterThan(3); // the check saw the session's actors (session, reply, llm, tts, ...)
    rows.push({ fault: name, state, leaked: describeLeaks(leaks) });
    expect(leaks).toEqual({ handles: {}, sessions: 0, actors: [] });
  } finally {
    await setup.stop();
  }
}

/** A turn that fails: the error's code, then back to listening. */
async function failedTurn(c: RawClient, text: string): Promise<string> {
  const from = c.messages.length;
  c.send({ type: 'user.text', text });
  const error = await c.next('error', (m) => c.messages.indexOf(m) >= from);
  expect(error['fatal']).toBe(false);
  await c.next('session.state', (m) => c.messages.indexOf(m) > from && m['state'] === 'listening');
  return String(error['code']);
}

/** A turn that works: its reply text. */
async function goodTurn(c: RawClient, text: string): Promise<string> {
  const from = c.messages.length;
  c.send({ type: 'user.text', text });
  const done = await c.next('reply.done', (m) => c.messages.indexOf(m) >= from);
  await c.next('session.state', (m) => c.messages.indexOf(m) > from && m['state'] === 'listening');
  return String(done['text']);
}

/** A TTS that answers every call with `chunks`. */
function scriptedTts(chunks: () => TtsChunk[]): TtsProvider {
  return {
    name: 'scripted-tts',
    async *synthesize() {
      for (const chunk of chunks()) yield chunk;
    },
  };
}

describe('provider faults', () => {
  it('the leak check itself sees a session, its socket and its actors left open', async () => {
    const setup = await startServer({ vad: false, providers: { stt: stt(), llm: new FakeLlm({ respond: () => ['Hi.'] }), tts: new FakeTts() } });
    try {
      const before = baseline();
      const c = setup.client();
      await c.hello();
      const leaks = await leaksSince(before, setup);
      expect(leaks.sessions).toBe(1);
      expect(leaks.handles['TCPSocketWrap']).toBeGreaterThanOrEqual(2); // both ends of the loopback socket
      expect(leaks.actors.length).toBeGreaterThanOrEqual(1); // the session actor (its root is 'x:0') and its children
    } finally {
      await setup.stop();
    }
  });

  it('an LLM that never answers: the timeout fires with provider_timeout and the session returns to listening', async () => {
    const llm = new FakeLlm({ respond: () => ['Fine now.'], fail: (call) => (call === 1 ? 'hang' : false) });
    await fault('LLM hangs (timeout 300 ms)', { stt: stt(), llm: withResilience(llm, { timeoutMs: 300, retries: 0 }), tts: new FakeTts({ msPerWord: 20 }) }, async (c) => {
      expect(await failedTurn(c, 'hello')).toBe('provider_timeout');
      expect(await goodTurn(c, 'again')).toBe('Fine now.');
      expect(llm.ledger.open()).toEqual([]);
      expect(llm.ledger.count('llm', 'aborted')).toBe(1);
      return 'error provider_timeout → listening; next turn ok';
    });
  });

  it('a TTS that never answers: provider_timeout, listening', async () => {
    const tts = new FakeTts({ msPerWord: 20, fail: (call) => (call === 1 ? 'hang' : false) });
    await fault('TTS hangs (timeout 300 ms)', { stt: stt(), llm: new FakeLlm({ respond: () => ['Fine now.'] }), tts: withResilience(tts, { timeoutMs: 300, retries: 0 }) }, async (c) => {
      expect(await failedTurn(c, 'hello')).toBe('provider_timeout');
      expect(await goodTurn(c, 'again')).toBe('Fine now.');
      expect(tts.ledger.open()).toEqual([]);
      return 'error provider_timeout → listening; next turn ok';
    });
  });

  it('an LLM stream that throws after 3 tokens: provider_failed, listening, the next turn works', async () => {
    let calls = 0;
    const llm: LlmProvider = {
      name: 'breaking-llm',
      async *stream() {
        calls++;
        if (calls === 1) {
          for (const text of ['One ', 'two ', 'three ']) yield { type: 'text', text };
          throw new ProviderError('provider_failed', 'llm', 'the stream broke after 3 tokens');
        }
        yield { type: 'text', text: 'All good now.' };
      },
    };
    await fault('LLM throws after 3 tokens', { stt: stt(), llm, tts: new FakeTts({ msPerWord: 20 }) }, async (c) => {
      expect(await failedTurn(c, 'hello')).toBe('provider_failed');
      expect(await goodTurn(c, 'again')).toBe('All good now.');
      return 'error provider_failed → listening; next turn ok';
    });
  });

  it('a TTS stream that throws after its first chunk: provider_failed, listening, the next turn works', async () => {
    const tts = new FakeTts({ msPerWord: 100, fail: (call) => (call === 1 ? 'midstream' : false) });
    await fault('TTS throws after the first chunk', { stt: stt(), llm: new FakeLlm({ respond: () => ['One two three four five six.'] }), tts }, async (c) => {
      expect(await failedTurn(c, 'hello')).toBe('provider_failed');
      expect(await goodTurn(c, 'again')).toBe('One two three four five six.');
      expect(tts.ledger.open()).toEqual([]);
      return 'error provider_failed → listening; next turn ok';
    });
  });

  const garbage: [string, () => TtsChunk][] = [
    ['bytes that are not PCM16 (3 bytes)', () => ({ pcm: new Uint8Array(3) as unknown as Int16Array, sampleRate: 16_000 })],
    ['Float32 NaN samples', () => ({ pcm: Float32Array.of(Number.NaN, Number.NaN, 0.5) as unknown as Int16Array, sampleRate: 16_000 })],
    ['sampleRate NaN', () => ({ pcm: new Int16Array(1600), sampleRate: Number.NaN })],
    ['sampleRate 0', () => ({ pcm: new Int16Array(1600), sampleRate: 0 })],
  ];
  for (const [label, chunk] of garbage) {
    it(`TTS garbage audio (${label}): provider_bad_response, listening`, async () => {
      let calls = 0;
      const tts = scriptedTts(() => (++calls === 1 ? [chunk()] : [{ pcm: new Int16Array(1600).fill(3000), sampleRate: 16_000 }]));
      await fault(`TTS chunk: ${label}`, { stt: stt(), llm: new FakeLlm({ respond: () => ['Hello there.'] }), tts }, async (c) => {
        expect(await failedTurn(c, 'hello')).toBe('provider_bad_response');
        expect(await goodTurn(c, 'again')).toBe('Hello there.');
        return 'error provider_bad_response → listening; next turn ok';
      });
    });
  }

  it('TTS audio at an odd rate and an odd sample count (11025 Hz, 2205 samples) is resampled and played whole', async () => {
    const tts = scriptedTts(() => [{ pcm: new Int16Array(2205).fill(4000), sampleRate: 11_025 }]);
    await fault('TTS chunk: 11025 Hz, odd sample count', { stt: stt(), llm: new FakeLlm({ respond: () => ['Hello there.'] }), tts }, async (c) => {
      expect(await goodTurn(c, 'hello')).toBe('Hello there.');
      // 200 ms of audio at 16 kHz: 10 frames of 320 samples (give or take the resampler's edge).
      const samples = c.audio.reduce((n, frame) => n + frame.length, 0);
      expect(samples).toBeGreaterThanOrEqual(3200 - 320);
      expect(samples).toBeLessThanOrEqual(3200 + 320);
      expect(c.of('error')).toEqual([]);
      return 'reply played whole → listening';
    });
  });
});
