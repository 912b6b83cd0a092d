import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenAiLlm, OpenAiStt, OpenAiTts } from '../../src/providers/openai/index.js';
import { withResilience } from '../../src/providers/resilience.js';
import { decodeWav } from '../../src/providers/local/pcm.js';
import type { LlmEvent } from '../../src/providers/types.js';
import {
  OpenAiServer,
  audio,
  chunk,
  errorBody,
  json,
  sse,
  text,
  textStream,
  usageChunk,
  type UploadedFile,
} from './servers/openai-server.js';
import { collect, rejection } from './helpers.js';

const CHAT = '/v1/chat/completions';
const TRANSCRIBE = '/v1/audio/transcriptions';
const SPEECH = '/v1/audio/speech';
const KEY = 'sk-test-abcdefghijklmnop1234';

let server: OpenAiServer;
beforeEach(async () => {
  server = await new OpenAiServer().start();
});
afterEach(async () => {
  await server.close();
});

const fast = { minDelayMs: 5, maxDelayMs: 20 };

describe('OpenAiLlm against a loopback chat completions server', () => {
  it('streams text deltas, then usage, and sends the request in the API shape', async () => {
    server.on(CHAT, sse(textStream(['Hello', ', ', 'world.'], [42, 3])));
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url, model: 'test-model', temperature: 0.2 });
    const events = await collect(
      llm.stream({
        signal: new AbortController().signal,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }] },
          { role: 'tool', toolCallId: 'call_1', name: 'weather', content: '{"sky":"clear"}' },
        ],
        tools: [{ name: 'weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
      }),
    );
    expect(events).toEqual([
      { type: 'text', text: 'Hello' },
      { type: 'text', text: ', ' },
      { type: 'text', text: 'world.' },
      { type: 'usage', usage: { inputTokens: 42, outputTokens: 3 } },
    ]);
    const [request] = server.requestsTo(CHAT);
    expect(request?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request?.body).toMatchObject({
      model: 'test-model',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      tools: [{ type: 'function', function: { name: 'weather', description: 'Current weather' } }],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear"}' },
      ],
    });
  });

  it('accumulates two parallel tool calls split over many chunks and yields them complete', async () => {
    const argsA = JSON.stringify({ city: 'Paris', unit: 'celsius' });
    const argsB = JSON.stringify({ party: 2, time: '19:00', date: 'tomorrow' });
    const pieces = (s: string, n: number): string[] => Array.from({ length: Math.ceil(s.length / n) }, (_, i) => s.slice(i * n, i * n + n));
    const a = pieces(argsA, 3);
    const b = pieces(argsB, 4);
    const deltas: unknown[] = [
      chunk({ role: 'assistant', content: null }),
      chunk({ tool_calls: [{ index: 0, id: 'call_A', type: 'function', function: { name: 'weather', arguments: '' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_B', type: 'function', function: { name: 'book_table', arguments: '' } }] }),
    ];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i]) deltas.push(chunk({ tool_calls: [{ index: 0, function: { arguments: a[i] } }] }));
      if (b[i]) deltas.push(chunk({ tool_calls: [{ index: 1, function: { arguments: b[i] } }] }));
    }
    deltas.push(chunk({}, 'tool_calls'), usageChunk(30, 25));
    expect(deltas.length).toBeGreaterThan(20);
    server.on(CHAT, sse(deltas));
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url });
    const events = await collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] }));
    expect(events).toEqual([
      { type: 'tool_call', call: { id: 'call_A', name: 'weather', arguments: argsA } },
      { type: 'tool_call', call: { id: 'call_B', name: 'book_table', arguments: argsB } },
      { type: 'usage', usage: { inputTokens: 30, outputTokens: 25 } },
    ]);
  });

  it('abort mid-stream rejects with provider_aborted and closes the HTTP response', async () => {
    server.on(CHAT, sse([chunk({ content: 'one ' }), chunk({ content: 'two ' })], { hold: true }));
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url });
    const controller = new AbortController();
    const closed = server.clientClosed;
    const seen: LlmEvent[] = [];
    const error = await rejection(
      (async () => {
        for await (const event of llm.stream({ signal: controller.signal, messages: [{ role: 'user', content: 'x' }] })) {
          seen.push(event);
          if (seen.length === 2) controller.abort();
        }
      })(),
    );
    expect(error.code).toBe('provider_aborted');
    expect(await closed).toBe(CHAT);
  });

  it('leaving the loop early closes the HTTP response', async () => {
    server.on(CHAT, sse([chunk({ content: 'one ' })], { hold: true }));
    const llm = withResilience(new OpenAiLlm({ apiKey: KEY, baseURL: server.url }));
    const closed = server.clientClosed;
    for await (const event of llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })) {
      expect(event).toEqual({ type: 'text', text: 'one ' });
      break;
    }
    expect(await closed).toBe(CHAT);
  });

  it('withResilience retries 429 then 500, then streams the successful answer', async () => {
    server.on(
      CHAT,
      json(429, errorBody('Rate limit reached', 'requests', 'rate_limit_exceeded')),
      json(500, errorBody('boom')),
      sse(textStream(['ok'])),
    );
    const llm = withResilience(new OpenAiLlm({ apiKey: KEY, baseURL: server.url }), fast);
    const events = await collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] }));
    expect(events[0]).toEqual({ type: 'text', text: 'ok' });
    expect(server.requestsTo(CHAT)).toHaveLength(3);
  });

  it('401 is provider_auth, not retried, and the key never appears in the message', async () => {
    server.on(CHAT, json(401, errorBody(`Incorrect API key provided: ${KEY}.`, 'invalid_request_error', 'invalid_api_key')));
    const llm = withResilience(new OpenAiLlm({ apiKey: KEY, baseURL: server.url }), fast);
    const error = await rejection(collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })));
    expect(error).toMatchObject({ code: 'provider_auth', status: 401, retryable: false, provider: 'llm' });
    expect(error.message).not.toContain(KEY);
    expect(server.requestsTo(CHAT)).toHaveLength(1);
  });

  it('a malformed SSE event is provider_bad_response', async () => {
    server.on(CHAT, sse([chunk({ content: 'fine ' }), '{"choices": [ this is not json']));
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url });
    const error = await rejection(collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })));
    expect(error.code).toBe('provider_bad_response');
  });

  it('a chunk without a choices array is provider_bad_response', async () => {
    server.on(CHAT, sse([{ id: 'x', object: 'chat.completion.chunk', nonsense: true }]));
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url });
    const error = await rejection(collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })));
    expect(error.code).toBe('provider_bad_response');
  });

  it('a server that never answers times out with provider_timeout and the request is dropped', async () => {
    server.on(CHAT, () => {}); // never responds
    const llm = withResilience(new OpenAiLlm({ apiKey: KEY, baseURL: server.url }), { timeoutMs: 150, retries: 0 });
    const closed = server.clientClosed;
    const error = await rejection(collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })));
    expect(error.code).toBe('provider_timeout');
    expect(await closed).toBe(CHAT);
  });

  it('an unreachable server is provider_unavailable and retryable', async () => {
    await server.close();
    const llm = new OpenAiLlm({ apiKey: KEY, baseURL: server.url });
    const error = await rejection(collect(llm.stream({ signal: new AbortController().signal, messages: [{ role: 'user', content: 'x' }] })));
    expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true });
    server = await new OpenAiServer().start(); // for afterEach
  });
});

describe('OpenAiStt against a loopback transcription endpoint', () => {
  const tone = (seconds: number): Float32Array =>
    Float32Array.from({ length: 16_000 * seconds }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16_000));

  it('uploads the utterance as a 16 kHz mono WAV file and returns the text', async () => {
    server.on(TRANSCRIBE, json(200, { text: ' book a table ' }));
    const stt = new OpenAiStt({ apiKey: KEY, baseURL: server.url });
    const samples = tone(0.5);
    const result = await stt.transcribe({ samples, sampleRate: 16_000 }, { signal: new AbortController().signal, language: 'en-US' });
    expect(result).toEqual({ text: 'book a table', final: true });
    const body = server.requestsTo(TRANSCRIBE)[0]?.body as Record<string, unknown>;
    expect(body['model']).toBe('gpt-4o-mini-transcribe');
    expect(body['language']).toBe('en');
    const file = body['file'] as UploadedFile;
    expect(file.name).toBe('utterance.wav');
    const wav = decodeWav(file.bytes);
    expect(wav).toMatchObject({ sampleRate: 16_000, channels: 1 });
    expect(wav.pcm.length).toBe(samples.length);
    expect(Math.abs((wav.pcm[100] ?? 0) / 0x8000 - (samples[100] ?? 0))).toBeLessThan(1e-3);
  });

  it('withResilience retries a 503 and succeeds', async () => {
    server.on(TRANSCRIBE, json(503, errorBody('overloaded')), json(200, { text: 'yes' }));
    const stt = withResilience(new OpenAiStt({ apiKey: KEY, baseURL: server.url, model: 'whisper-1' }), fast);
    const result = await stt.transcribe({ samples: tone(0.1), sampleRate: 16_000 }, { signal: new AbortController().signal });
    expect(result.text).toBe('yes');
    expect(server.requestsTo(TRANSCRIBE)).toHaveLength(2);
  });

  it('a response without text is provider_bad_response', async () => {
    server.on(TRANSCRIBE, json(200, { transcript: 'wrong field' }));
    const stt = new OpenAiStt({ apiKey: KEY, baseURL: server.url });
    const error = await rejection(stt.transcribe({ samples: tone(0.1), sampleRate: 16_000 }, { signal: new AbortController().signal }));
    expect(error.code).toBe('provider_bad_response');
  });

  it('abort during the upload rejects with provider_aborted and drops the request', async () => {
    server.on(TRANSCRIBE, () => {});
    const stt = new OpenAiStt({ apiKey: KEY, baseURL: server.url });
    const controller = new AbortController();
    const closed = server.clientClosed;
    const pending = stt.transcribe({ samples: tone(0.1), sampleRate: 16_000 }, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    expect((await rejection(pending)).code).toBe('provider_aborted');
    expect(await closed).toBe(TRANSCRIBE);
  });
});

describe('OpenAiTts against a loopback speech endpoint', () => {
  const pcmBytes = (samples: number): Uint8Array => {
    const pcm = Int16Array.from({ length: samples }, (_, i) => ((i * 37) % 2000) - 1000);
    return new Uint8Array(pcm.buffer);
  };

  it('streams 24 kHz PCM16, reassembling samples split across network chunks', async () => {
    const bytes = pcmBytes(24_000);
    server.on(SPEECH, audio(bytes, { chunkBytes: 1001, delayMs: 1 }));
    const tts = new OpenAiTts({ apiKey: KEY, baseURL: server.url, voice: 'nova', speed: 1.25, instructions: 'Cheerful.' });
    const chunks = await collect(tts.synthesize('Hello there.', { signal: new AbortController().signal, voice: 'coral' }));
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.every((c) => c.sampleRate === 24_000)).toBe(true);
    const joined = new Int16Array(chunks.reduce((n, c) => n + c.pcm.length, 0));
    let offset = 0;
    for (const c of chunks) {
      joined.set(c.pcm, offset);
      offset += c.pcm.length;
    }
    expect(new Uint8Array(joined.buffer)).toEqual(bytes);
    expect(server.requestsTo(SPEECH)[0]?.body).toEqual({
      model: 'gpt-4o-mini-tts',
      input: 'Hello there.',
      voice: 'coral',
      response_format: 'pcm',
      speed: 1.25,
      instructions: 'Cheerful.',
    });
  });

  it('abort mid-stream stops reading and closes the response', async () => {
    server.on(SPEECH, audio(pcmBytes(4800), { chunkBytes: 960, hold: true }));
    const tts = new OpenAiTts({ apiKey: KEY, baseURL: server.url });
    const controller = new AbortController();
    const closed = server.clientClosed;
    let received = 0;
    const error = await rejection(
      (async () => {
        for await (const c of tts.synthesize('Long text.', { signal: controller.signal })) {
          received += c.pcm.length;
          if (received >= 480) controller.abort();
        }
      })(),
    );
    expect(error.code).toBe('provider_aborted');
    expect(await closed).toBe(SPEECH);
  });

  it('withResilience retries a 500 before the first chunk', async () => {
    server.on(SPEECH, json(500, errorBody('boom')), audio(pcmBytes(480)));
    const tts = withResilience(new OpenAiTts({ apiKey: KEY, baseURL: server.url }), fast);
    const chunks = await collect(tts.synthesize('Hi.', { signal: new AbortController().signal }));
    expect(chunks.reduce((n, c) => n + c.pcm.length, 0)).toBe(480);
    expect(server.requestsTo(SPEECH)).toHaveLength(2);
  });

  it('a JSON body where audio was expected is provider_bad_response', async () => {
    server.on(SPEECH, text(200, '{"error":"nope"}', 'application/json'));
    const tts = new OpenAiTts({ apiKey: KEY, baseURL: server.url });
    const error = await rejection(collect(tts.synthesize('Hi.', { signal: new AbortController().signal })));
    expect(error.code).toBe('provider_bad_response');
  });
});
