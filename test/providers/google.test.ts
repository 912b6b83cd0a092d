import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GoogleStt, GoogleTts } from '../../src/providers/google/index.js';
import { withResilience } from '../../src/providers/resilience.js';
import type { Transcript } from '../../src/providers/types.js';
import { GoogleServer, echoRecognizer, fail, result, status, wavSynthesizer, type RecognizeHandler } from './servers/google-server.js';
import { collect, rejection } from './helpers.js';

let server: GoogleServer;
beforeEach(async () => {
  server = await new GoogleServer().start();
});
afterEach(async () => {
  await server.close();
});

const frame = (ms = 100): Float32Array => new Float32Array((16_000 * ms) / 1000).fill(0.1);

/** `count` frames of 100 ms, `gapMs` apart, then the end of the audio. */
async function* frames(count: number, gapMs = 0): AsyncGenerator<Float32Array> {
  for (let i = 0; i < count; i++) {
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
    yield frame();
  }
}

/** Audio that never ends (until the consumer stops pulling). */
async function* endless(gapMs = 10): AsyncGenerator<Float32Array> {
  for (;;) {
    await new Promise((r) => setTimeout(r, gapMs));
    yield frame();
  }
}

const signal = (): AbortSignal => new AbortController().signal;

describe('GoogleStt against a loopback StreamingRecognize server', () => {
  it('stream() yields interim hypotheses and the final result, with the recognition config sent first', async () => {
    const stt = new GoogleStt({ ...server.clientOptions, model: 'latest_short', language: 'en-GB' });
    const results = await collect(stt.stream(frames(5, 5), { signal: signal(), language: 'en-US' }));
    expect(results.filter((r) => !r.final).map((r) => r.text)).toEqual(['book', 'book a', 'book a table', 'book a table for', 'book a table for two']);
    expect(results.at(-1)).toEqual({ text: 'book a table for two', final: true, confidence: expect.closeTo(0.9, 5) });
    const call = server.recognizeCalls[0]!;
    expect(call.requests[0]?.streamingConfig).toMatchObject({
      config: { encoding: 'LINEAR16', sampleRateHertz: 16_000, languageCode: 'en-US', model: 'latest_short', enableAutomaticPunctuation: true },
      interimResults: true,
    });
    expect(call.requests.slice(1).reduce((n, r) => n + (r.audioContent?.length ?? 0), 0)).toBe(5 * 1600 * 2);
    expect(call.halfClosed).toBe(true);
  });

  it('transcribe() streams the utterance in ≤ 25 KB messages and returns the joined final text', async () => {
    const stt = new GoogleStt(server.clientOptions);
    const samples = new Float32Array(16_000 * 2).fill(0.05);
    const transcript = await stt.transcribe({ samples, sampleRate: 16_000 }, { signal: signal() });
    expect(transcript).toMatchObject({ text: 'book a table for two', final: true });
    const call = server.recognizeCalls[0]!;
    expect(call.requests[0]?.streamingConfig?.interimResults ?? false).toBe(false);
    const audioMessages = call.requests.slice(1);
    expect(audioMessages.every((r) => (r.audioContent?.length ?? 0) <= 25_600)).toBe(true);
    expect(audioMessages.reduce((n, r) => n + (r.audioContent?.length ?? 0), 0)).toBe(samples.length * 2);
  });

  it('abort mid-stream rejects with provider_aborted and cancels the gRPC stream', async () => {
    const stt = new GoogleStt(server.clientOptions);
    const controller = new AbortController();
    const cancelled = server.cancelled;
    const error = await rejection(
      (async () => {
        for await (const t of stt.stream(endless(), { signal: controller.signal })) if (!t.final) controller.abort();
      })(),
    );
    expect(error.code).toBe('provider_aborted');
    expect(await cancelled).toBe('StreamingRecognize');
    expect(server.recognizeCalls[0]?.cancelled).toBe(true);
  });

  it('single-utterance mode stops sending audio at END_OF_SINGLE_UTTERANCE and ends after the final', async () => {
    server.recognizeHandlers.push(async (call, requests) => {
      let n = 0;
      for await (const request of requests) {
        if (request.audioContent && ++n === 3) {
          call.write({ speechEventType: 'END_OF_SINGLE_UTTERANCE' });
          break;
        }
      }
      for await (const _ of requests); // wait for the client to half-close
      call.write(result('yes please', true));
      call.end();
    });
    const stt = new GoogleStt({ ...server.clientOptions, singleUtterance: true });
    const results = await collect(stt.stream(endless(5), { signal: signal() }));
    expect(results).toEqual([{ text: 'yes please', final: true, confidence: expect.closeTo(0.9, 5) }]);
    expect(server.recognizeCalls[0]?.requests[0]?.streamingConfig?.singleUtterance).toBe(true);
    expect(server.recognizeCalls[0]?.halfClosed).toBe(true);
  });

  it('a continuous stream past restartAfterMs moves to a fresh gRPC stream between turns', async () => {
    // Each stream answers a final after every 3 audio messages and never ends on its own.
    const perTurn: RecognizeHandler = async (call, requests) => {
      let n = 0;
      let turn = 0;
      for await (const request of requests) {
        if (request.audioContent && ++n % 3 === 0) call.write(result(`turn ${server.recognizeCalls.length}.${++turn}`, true));
      }
      call.end();
    };
    server.recognizeHandlers.push(perTurn, perTurn, perTurn);
    const stt = new GoogleStt({ ...server.clientOptions, restartAfterMs: 0 });
    // The user pauses after each turn: the next audio comes only once the final result is back
    // (so the test does not depend on how fast loopback gRPC answers on a loaded machine).
    const results: Transcript[] = [];
    async function* turns(): AsyncGenerator<Float32Array> {
      for (let i = 0; i < 7; i++) {
        if (i > 0 && i % 3 === 0) while (results.length < i / 3) await new Promise((r) => setTimeout(r, 2));
        yield frame();
      }
    }
    for await (const result of stt.stream(turns(), { signal: signal() })) results.push(result);
    expect(server.recognizeCalls.length).toBe(3);
    expect(server.recognizeCalls.every((c) => c.requests[0]?.streamingConfig !== undefined)).toBe(true);
    expect(results.map((r) => r.text)).toEqual(['turn 1.1', 'turn 2.1']);
    expect(server.recognizeCalls.every((c) => c.halfClosed)).toBe(true);
  });

  it("Google's stream duration limit (OUT_OF_RANGE) mid-stream continues on a new stream", async () => {
    server.recognizeHandlers.push(async (call, requests) => {
      let n = 0;
      for await (const request of requests) {
        if (request.audioContent && ++n === 2) {
          fail(call, status(grpc.status.OUT_OF_RANGE, 'Exceeded maximum allowed stream duration of 305 seconds.'));
          return;
        }
      }
    });
    const stt = new GoogleStt(server.clientOptions);
    const results = await collect(stt.stream(frames(6, 10), { signal: signal() }));
    expect(server.recognizeCalls.length).toBe(2);
    expect(results.at(-1)).toMatchObject({ final: true });
  });

  it('UNAVAILABLE at the start is retried by withResilience, replaying the audio already consumed', async () => {
    server.recognizeHandlers.push(async (call, requests) => {
      let n = 0;
      for await (const request of requests) if (request.audioContent && ++n === 2) break;
      fail(call, status(grpc.status.UNAVAILABLE, 'backend restarting'));
    });
    const stt = withResilience(new GoogleStt(server.clientOptions), { minDelayMs: 5, maxDelayMs: 10 });
    const results: Transcript[] = await collect(stt.stream!(frames(4, 5), { signal: signal() }));
    expect(results.at(-1)).toMatchObject({ text: 'book a table for two', final: true });
    expect(server.recognizeCalls.length).toBe(2);
    const second = server.recognizeCalls[1]!;
    expect(second.requests.slice(1).reduce((n, r) => n + (r.audioContent?.length ?? 0), 0)).toBe(4 * 1600 * 2);
  });

  it('RESOURCE_EXHAUSTED is provider_rate_limited; PERMISSION_DENIED is provider_auth', async () => {
    server.recognizeHandlers.push(
      (call) => fail(call, status(grpc.status.RESOURCE_EXHAUSTED, 'quota')),
      (call) => fail(call, status(grpc.status.PERMISSION_DENIED, 'no')),
    );
    const stt = new GoogleStt(server.clientOptions);
    const audio = { samples: frame(), sampleRate: 16_000 };
    expect(await rejection(stt.transcribe(audio, { signal: signal() }))).toMatchObject({ code: 'provider_rate_limited', retryable: true });
    expect(await rejection(stt.transcribe(audio, { signal: signal() }))).toMatchObject({ code: 'provider_auth', retryable: false });
  });

  it('a final result without alternatives is provider_bad_response', async () => {
    server.recognizeHandlers.push(async (call, requests) => {
      for await (const _ of requests);
      call.write({ results: [{ isFinal: true, alternatives: [] }] });
      call.end();
    });
    const stt = new GoogleStt(server.clientOptions);
    const error = await rejection(stt.transcribe({ samples: frame(), sampleRate: 16_000 }, { signal: signal() }));
    expect(error.code).toBe('provider_bad_response');
  });
});

describe('GoogleTts against a loopback SynthesizeSpeech server', () => {
  it('strips the WAV header and reports the rate in it, not the one requested', async () => {
    server.synthesizeHandlers.push(wavSynthesizer({ rate: 22_050, seconds: 1 }));
    const tts = new GoogleTts({ ...server.clientOptions, sampleRate: 24_000, voice: 'en-US-Neural2-F', language: 'en-US' });
    const chunks = await collect(tts.synthesize('Your table is booked.', { signal: signal() }));
    expect(chunks.every((c) => c.sampleRate === 22_050)).toBe(true);
    expect(chunks.reduce((n, c) => n + c.pcm.length, 0)).toBe(22_050);
    expect(chunks[0]?.pcm[0]).toBe(0); // the header is gone: a sine starts at 0, "RI" would be 18770
    expect(server.synthesizeRequests[0]).toMatchObject({
      input: { text: 'Your table is booked.' },
      voice: { languageCode: 'en-US', name: 'en-US-Neural2-F' },
      audioConfig: { audioEncoding: 'LINEAR16', sampleRateHertz: 24_000 },
    });
  });

  it('sends SSML when the text starts with <speak>, and headerless audio keeps the requested rate', async () => {
    server.synthesizeHandlers.push(wavSynthesizer({ header: false, seconds: 0.25 }));
    const tts = new GoogleTts({ ...server.clientOptions, sampleRate: 16_000 });
    const ssml = '<speak>Table for <say-as interpret-as="cardinal">2</say-as>.</speak>';
    const chunks = await collect(tts.synthesize(ssml, { signal: signal(), voice: 'en-US-Wavenet-D' }));
    expect(chunks.reduce((n, c) => n + c.pcm.length, 0)).toBe(4000);
    expect(chunks[0]?.sampleRate).toBe(16_000);
    expect(server.synthesizeRequests[0]?.input).toMatchObject({ ssml });
    expect(server.synthesizeRequests[0]?.input?.text).toBeUndefined();
    expect(server.synthesizeRequests[0]?.voice?.name).toBe('en-US-Wavenet-D');
  });

  it('abort while waiting rejects with provider_aborted and cancels the call', async () => {
    server.synthesizeHandlers.push(async () => ({ hang: true }));
    const tts = new GoogleTts(server.clientOptions);
    const controller = new AbortController();
    const cancelled = server.cancelled;
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(collect(tts.synthesize('Hello.', { signal: controller.signal })));
    expect(error.code).toBe('provider_aborted');
    expect(await cancelled).toBe('SynthesizeSpeech');
  });

  it('UNAVAILABLE then success: withResilience retries once (google-gax retries are off)', async () => {
    server.synthesizeHandlers.push(async () => status(grpc.status.UNAVAILABLE, 'try again'), wavSynthesizer());
    const tts = withResilience(new GoogleTts(server.clientOptions), { minDelayMs: 5, maxDelayMs: 10 });
    const chunks = await collect(tts.synthesize('Hello.', { signal: signal() }));
    expect(chunks.length).toBeGreaterThan(0);
    expect(server.synthesizeRequests).toHaveLength(2);
  });

  it('empty audio or a broken WAV header is provider_bad_response', async () => {
    server.synthesizeHandlers.push(
      async () => ({ audioContent: new Uint8Array(0) }),
      async () => ({ audioContent: Buffer.from('RIFF\x00\x00\x00\x00WAVEjunkjunkjunk', 'latin1') }),
    );
    const tts = new GoogleTts(server.clientOptions);
    expect((await rejection(collect(tts.synthesize('a', { signal: signal() })))).code).toBe('provider_bad_response');
    expect((await rejection(collect(tts.synthesize('b', { signal: signal() })))).code).toBe('provider_bad_response');
  });
});

describe('Google providers against a server sending undecodable messages', () => {
  it('maps protobuf decoding failures to provider_bad_response', async () => {
    const broken = await new GoogleServer({ malformed: true }).start();
    try {
      const tts = new GoogleTts(broken.clientOptions);
      expect((await rejection(collect(tts.synthesize('Hello.', { signal: signal() })))).code).toBe('provider_bad_response');
      broken.recognizeHandlers.push(echoRecognizer());
      const stt = new GoogleStt(broken.clientOptions);
      expect((await rejection(collect(stt.stream(frames(3), { signal: signal() })))).code).toBe('provider_bad_response');
    } finally {
      await broken.close();
    }
  });
});
