import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenAiRealtimeStt, type OpenAiRealtimeSttOptions } from '../../src/providers/openai/index.js';
import type { Transcript } from '../../src/providers/types.js';
import { OpenAiRealtimeServer } from './servers/openai-realtime-server.js';
import { collect, rejection } from './helpers.js';

const KEY = 'sk-test-realtime-abcdefghijklmnop1234';
const RATE = 16_000;

let server: OpenAiRealtimeServer;
beforeEach(async () => {
  server = await new OpenAiRealtimeServer({ apiKey: KEY }).start();
});
afterEach(async () => {
  await server.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const signal = (): AbortSignal => new AbortController().signal;
const stt = (options: OpenAiRealtimeSttOptions = {}): OpenAiRealtimeStt =>
  new OpenAiRealtimeStt({ apiKey: KEY, baseURL: server.url, ...options });

/** A 220 Hz tone at 0.3 (speech stand-in) or digital silence, `ms` long at 16 kHz. */
const tone = (ms: number): Float32Array =>
  Float32Array.from({ length: (RATE * ms) / 1000 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 220 * i) / RATE));
const quiet = (ms: number): Float32Array => new Float32Array((RATE * ms) / 1000);

type Step = { voice: number } | { silence: number } | 'pause';

/**
 * One user turn as the session feeds it: 20 ms frames (paced in real time unless `fast`), and the
 * pause listener called at each 'pause' step. `ended` turns true once the audio iterable is done.
 */
function turn(steps: readonly Step[], fast = false) {
  const listeners: (() => void)[] = [];
  const state = { ended: false, samples: 0, samplesAtPause: [] as number[] };
  async function* audio(): AsyncGenerator<Float32Array> {
    for (const step of steps) {
      if (step === 'pause') {
        state.samplesAtPause.push(state.samples);
        for (const listener of listeners) listener();
        continue;
      }
      const clip = 'voice' in step ? tone(step.voice) : quiet(step.silence);
      for (let i = 0; i < clip.length; i += 320) {
        if (!fast) await sleep(20);
        const frame = clip.subarray(i, i + 320);
        state.samples += frame.length;
        yield frame;
      }
    }
    state.ended = true;
  }
  return { audio: audio(), onPause: (listener: () => void) => listeners.push(listener), state };
}

/** Audio that never ends (until the consumer stops pulling). */
async function* endless(): AsyncGenerator<Float32Array> {
  for (;;) {
    await sleep(20);
    yield tone(20);
  }
}

describe('OpenAiRealtimeStt against a loopback Realtime server', () => {
  it('stream() opens a transcription session (24 kHz PCM16, no server VAD) and yields interim results before the audio ends', async () => {
    server.script.push('Book a table for two.', 'At seven, please.');
    const feed = turn([{ voice: 600 }, { silence: 200 }, 'pause', { voice: 500 }, { silence: 200 }, 'pause', { silence: 300 }]);
    const results: (Transcript & { audioEnded: boolean })[] = [];
    const provider = stt({ language: 'en-GB', prompt: 'restaurant booking' });
    for await (const t of provider.stream(feed.audio, { signal: signal(), onPause: feed.onPause }))
      results.push({ ...t, audioEnded: feed.state.ended });

    expect(results.map(({ text, final }) => ({ text, final }))).toEqual([
      { text: 'Book', final: false },
      { text: 'Book a', final: false },
      { text: 'Book a table', final: false },
      { text: 'Book a table for', final: false },
      { text: 'Book a table for two.', final: false },
      { text: 'Book a table for two.', final: true },
      { text: 'At', final: false },
      { text: 'At seven,', final: false },
      { text: 'At seven, please.', final: false },
      { text: 'At seven, please.', final: true },
    ]);
    expect(results.find((r) => !r.final)?.audioEnded).toBe(false);

    const [connection] = server.connections;
    expect(await connection?.closed).toMatchObject({ code: 1000 }); // and the server has read everything
    expect(connection?.url.searchParams.get('intent')).toBe('transcription');
    expect(connection?.url.searchParams.has('model')).toBe(false);
    expect(connection?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(connection?.updates).toEqual([
      {
        type: 'transcription',
        audio: {
          input: {
            format: { type: 'audio/pcm', rate: 24_000 },
            transcription: { model: 'gpt-4o-mini-transcribe', language: 'en', prompt: 'restaurant booking' },
            turn_detection: null,
          },
        },
      },
    ]);
    expect(connection?.eventTypes[0]).toBe('session.update');
    // All of the audio arrived, resampled to 24 kHz.
    expect(connection?.appendedSamples).toBe(feed.state.samples * 1.5);
    // One commit per pause, each holding the audio up to that pause (less the resampler's delay, under 5 ms);
    // the silent tail after the last pause is not committed.
    expect(connection?.commits).toHaveLength(2);
    feed.state.samplesAtPause.forEach((samples, i) =>
      expect(Math.abs(connection!.commits[i]!.atSample - samples * 1.5)).toBeLessThanOrEqual(120),
    );
  });

  it('segments committed at pauses come out in commit order, even when a later one is transcribed first', async () => {
    server.script.push({ text: 'first part', startDelayMs: 250 }, { text: 'second part', startDelayMs: 0 });
    const feed = turn([{ voice: 300 }, 'pause', { voice: 300 }, 'pause'], true);
    const results = await collect(stt().stream(feed.audio, { signal: signal(), onPause: feed.onPause }));

    const connection = server.connections[0]!;
    const completed = connection.sent.filter((e) => e.type.endsWith('transcription.completed')).map((e) => e.itemId);
    expect(completed).toEqual([connection.commits[1]?.itemId, connection.commits[0]?.itemId]); // the server finished the second first
    expect(results.filter((r) => r.final).map((r) => r.text)).toEqual(['first part', 'second part']);
    const firstFinal = results.findIndex((r) => r.final);
    expect(results.slice(0, firstFinal).every((r) => r.text.startsWith('first'))).toBe(true);
    expect(results.at(-1)).toEqual({ text: 'second part', final: true });
  });

  it('transcribe() appends the utterance, commits once and returns the completed text (48 kHz input resampled)', async () => {
    server.script.push('Yes please.');
    const samples = Float32Array.from({ length: 48_000 * 1.5 }, (_, i) => 0.2 * Math.sin((2 * Math.PI * 300 * i) / 48_000));
    const provider = stt({ baseURL: server.url.replace('ws://', 'http://') }); // the REST form of the URL works too
    const transcript = await provider.transcribe({ samples, sampleRate: 48_000 }, { signal: signal() });
    expect(transcript).toEqual({ text: 'Yes please.', final: true });
    const connection = server.connections[0]!;
    await connection.closed;
    expect(connection.commits).toHaveLength(1);
    expect(connection.appendedSamples).toBe(36_000);
    // 1 s per append, then the resampler's last few samples.
    expect(connection.eventTypes.filter((t) => t === 'input_audio_buffer.append')).toHaveLength(3);
  });

  it('a tail shorter than 100 ms at the end is padded so OpenAI accepts the commit; silence alone is never committed', async () => {
    server.script.push('Hi.');
    expect(await collect(stt().stream(turn([{ voice: 40 }], true).audio, { signal: signal() }))).toEqual([
      { text: 'Hi.', final: false },
      { text: 'Hi.', final: true },
    ]);
    expect(server.connections[0]?.commits[0]?.samples).toBe(2400);

    expect(await collect(stt().stream(turn([{ silence: 500 }, 'pause', { silence: 300 }], true).audio, { signal: signal() }))).toEqual([]);
    expect(server.connections[1]?.commits ?? []).toEqual([]);
  });

  it('a server error event mid-stream rejects with its code and closes the socket', async () => {
    server.script.push({ error: { type: 'server_error', message: 'The server had an error while processing your request.' } });
    const feed = turn([{ voice: 200 }, 'pause', { voice: 2000 }], true);
    const error = await rejection(collect(stt().stream(feed.audio, { signal: signal(), onPause: feed.onPause })));
    expect(error).toMatchObject({ code: 'provider_failed', provider: 'stt', retryable: true });
    expect(error.message).toContain('The server had an error');
    expect(await server.connections[0]?.closed).toMatchObject({ code: 1000 });
  });

  it('rate limits, failed transcriptions and dropped sockets map to the stable codes', async () => {
    server.script.push({ error: { type: 'invalid_request_error', code: 'rate_limit_exceeded', message: 'Rate limit reached.' } });
    expect(await rejection(collect(stt().stream(turn([{ voice: 200 }], true).audio, { signal: signal() })))).toMatchObject({
      code: 'provider_rate_limited',
      retryable: true,
    });

    server.script.push({ failure: { type: 'server_error', code: 'transcription_failed', message: 'Audio could not be decoded.' } });
    const failed = await rejection(collect(stt().stream(turn([{ voice: 200 }], true).audio, { signal: signal() })));
    expect(failed).toMatchObject({ code: 'provider_failed' });
    expect(failed.message).toContain('Audio could not be decoded');

    const dropped = stt().stream(endless(), { signal: signal() });
    void server.nextConnection().then(async (connection) => {
      await sleep(100);
      connection.close(1011, 'internal error');
    });
    expect(await rejection(collect(dropped))).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });

  it('an audio source that fails rejects the stream with its error and closes the socket', async () => {
    const connected = server.nextConnection();
    async function* broken(): AsyncGenerator<Float32Array> {
      yield tone(200);
      await connected;
      await sleep(50);
      throw new Error('microphone unplugged');
    }
    const error = await rejection(collect(stt().stream(broken(), { signal: signal() })));
    expect(error).toMatchObject({ code: 'provider_failed', message: 'microphone unplugged' });
    expect(await (await connected).closed).toMatchObject({ code: 1000 });
  });

  it('abort mid-stream rejects with provider_aborted and closes the socket at once', async () => {
    const controller = new AbortController();
    const connected = server.nextConnection();
    const pending = collect(stt().stream(endless(), { signal: controller.signal }));
    const connection = await connected;
    await sleep(100);
    const abortedAt = performance.now();
    controller.abort();
    expect(await rejection(pending)).toMatchObject({ code: 'provider_aborted' });
    const closed = await connection.closed;
    expect(closed.at - abortedAt).toBeLessThan(200);
    expect(connection.appendedSamples).toBeGreaterThan(0);
  });

  it('never puts the API key in an error: a wrong key at the handshake, a key echoed in an error event', async () => {
    const wrong = 'sk-wrong-key-0123456789abcdefghij';
    const refused = await rejection(stt({ apiKey: wrong }).transcribe({ samples: tone(200), sampleRate: RATE }, { signal: signal() }));
    expect(refused).toMatchObject({ code: 'provider_auth', status: 401 });
    expect(server.refused).toEqual([{ status: 401, url: '/v1/realtime?intent=transcription' }]);

    const message = `Incorrect API key provided: ${KEY}.`;
    server.script.push({ error: { type: 'invalid_request_error', code: 'invalid_api_key', message } });
    const echoed = await rejection(stt().transcribe({ samples: tone(200), sampleRate: RATE }, { signal: signal() }));
    expect(echoed).toMatchObject({ code: 'provider_auth' });

    for (const error of [refused, echoed]) {
      const everything = `${error.message} ${JSON.stringify(error)} ${String(error.stack)}`;
      expect(everything).not.toContain(KEY);
      expect(everything).not.toContain(wrong);
    }
  });

  it('nothing listening at baseURL is provider_unavailable', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((r) => probe.close(() => r()));
    const provider = stt({ baseURL: `ws://127.0.0.1:${port}/v1` });
    const error = await rejection(provider.transcribe({ samples: tone(200), sampleRate: RATE }, { signal: signal() }));
    expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });
});
