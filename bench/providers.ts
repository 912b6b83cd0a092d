/**
 * bench:providers — figures, not a timed test.
 *
 * 1. Local TTS (Flite in worker threads): time to first audio by sentence length and voice.
 * 2. What the provider layer costs on top of loopback servers speaking the real wire protocols:
 *    time to first event through a bare client, through the provider, and through the provider
 *    wrapped in withResilience + withConcurrency, side by side (p50 / p99).
 */
import * as grpc from '@grpc/grpc-js';
import { FliteTts, type FliteVoice } from '../src/providers/local/index.js';
import { OpenAiLlm } from '../src/providers/openai/index.js';
import { GoogleTts } from '../src/providers/google/index.js';
import { withConcurrency, withResilience } from '../src/providers/resilience.js';
import { OpenAiServer, sse, textStream } from '../test/providers/servers/openai-server.js';
import { GoogleServer, rawTtsClient, wavSynthesizer } from '../test/providers/servers/google-server.js';
import { percentileOf as percentile } from './stats.js';

const ms = (v: number): string => v.toFixed(2).padStart(8);
const signal = (): AbortSignal => new AbortController().signal;

async function firstOf<T>(iterable: AsyncIterable<T>): Promise<void> {
  for await (const _ of iterable) break;
}

async function drain<T>(iterable: AsyncIterable<T>): Promise<void> {
  for await (const _ of iterable);
}

// ---------------------------------------------------------------------------------------------
// 1. Local TTS

const SENTENCES: Record<string, string> = {
  'short (3 words)': 'Hello there, friend.',
  'medium (13 words)': 'Your table for two people is booked for tomorrow at seven in the evening.',
  'long (1 sentence, 40 words)':
    'I have booked a table for two people tomorrow at seven in the evening, close to the window as you asked, and I will send a confirmation message with the address and a map to the phone number you gave me earlier.',
  'paragraph (4 sentences)':
    'Your table is booked. It is for two people tomorrow at seven. The restaurant is on the corner of Main Street and Fifth Avenue. Would you like me to send the address to your phone?',
};

async function benchLocalTts(): Promise<void> {
  const runs = 8;
  console.log(`\nLocal TTS (Flite WASI, 1 worker thread) — time to first audio, ${runs} runs each, after warm-up`);
  console.log(`${'voice'.padEnd(7)} ${'text'.padEnd(30)} ${'TTFA p50'.padStart(9)} ${'TTFA max'.padStart(9)} ${'total p50'.padStart(10)} ${'audio s'.padStart(8)} ${'x realtime'.padStart(10)}`);
  for (const voice of ['slt', 'kal16'] as FliteVoice[]) {
    const tts = new FliteTts({ voice });
    await tts.warmUp();
    await drain(tts.synthesize('Warm up.', { signal: signal() }));
    for (const [label, text] of Object.entries(SENTENCES)) {
      const firsts: number[] = [];
      const totals: number[] = [];
      let samples = 0;
      for (let i = 0; i < runs; i++) {
        const start = performance.now();
        let first = 0;
        samples = 0;
        for await (const chunk of tts.synthesize(text, { signal: signal() })) {
          if (!first) first = performance.now() - start;
          samples += chunk.pcm.length;
        }
        firsts.push(first);
        totals.push(performance.now() - start);
        // Leave the worker time to prepare its next instance, as between real turns.
        await new Promise((r) => setTimeout(r, 150));
      }
      const audio = samples / 16_000;
      const total = percentile(totals, 50);
      console.log(
        `${voice.padEnd(7)} ${label.padEnd(30)} ${ms(percentile(firsts, 50))} ms${ms(Math.max(...firsts))} ms ${ms(total)} ms ${audio.toFixed(2).padStart(8)} ${(audio / (total / 1000)).toFixed(0).padStart(9)}x`,
      );
    }
    await tts.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Provider-layer overhead on loopback servers

interface Row {
  readonly label: string;
  readonly times: number[];
}

function printRows(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  console.log(`${''.padEnd(50)} ${'p50'.padStart(8)}    ${'p99'.padStart(8)}    ${'+p50 vs prev'.padStart(12)}  ${'+p99 vs prev'.padStart(12)}`);
  let previous: Row | undefined;
  for (const row of rows) {
    const p50 = percentile(row.times, 50);
    const p99 = percentile(row.times, 99);
    const d50 = previous ? ms(p50 - percentile(previous.times, 50)) + ' ms' : ''.padStart(11);
    const d99 = previous ? ms(p99 - percentile(previous.times, 99)) + ' ms' : ''.padStart(11);
    console.log(`${row.label.padEnd(50)} ${ms(p50)} ms ${ms(p99)} ms ${d50.padStart(14)} ${d99.padStart(14)}`);
    previous = row;
  }
}

/** Runs the variants interleaved (a, b, c, a, b, c, ...) so drift affects them alike. */
async function interleave(iterations: number, variants: readonly { label: string; run: () => Promise<void> }[]): Promise<Row[]> {
  const rows = variants.map((v) => ({ label: v.label, times: [] as number[] }));
  for (let i = 0; i < iterations + 20; i++) {
    for (const [index, variant] of variants.entries()) {
      const start = performance.now();
      await variant.run();
      if (i >= 20) rows[index]!.times.push(performance.now() - start); // the first 20 are warm-up
    }
  }
  return rows;
}

async function benchOpenAiOverhead(): Promise<void> {
  const server = await new OpenAiServer().start();
  const CHAT = '/v1/chat/completions';
  const answer = sse(textStream(['Hello', ' there', '.']));
  const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  const request = { messages: [{ role: 'user' as const, content: 'hi' }], signal: signal() };
  const bare = new OpenAiLlm({ apiKey: 'sk-bench', baseURL: server.url });
  const wrapped = withConcurrency(withResilience(new OpenAiLlm({ apiKey: 'sk-bench', baseURL: server.url })), 8);
  const rows = await interleave(400, [
    {
      label: 'fetch + read to the first SSE event (baseline)',
      run: async () => {
        server.on(CHAT, answer);
        const response = await fetch(`${server.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let text = '';
        while (!text.includes('\n\n')) {
          const { value, done } = await reader.read();
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
        await reader.cancel();
      },
    },
    {
      label: 'OpenAiLlm (openai SDK + mapping)',
      run: async () => {
        server.on(CHAT, answer);
        await firstOf(bare.stream(request));
      },
    },
    {
      label: '+ withResilience + withConcurrency(8)',
      run: async () => {
        server.on(CHAT, answer);
        await firstOf(wrapped.stream(request));
      },
    },
  ]);
  printRows('OpenAI chat stream on a loopback SSE server — time to first event, 400 calls each', rows);
  await server.close();
}

async function benchGoogleOverhead(): Promise<void> {
  const server = await new GoogleServer().start();
  const raw = rawTtsClient(server.port);
  const creds = { apiEndpoint: '127.0.0.1', port: server.port, sslCreds: grpc.credentials.createInsecure() };
  const bare = new GoogleTts(creds);
  const wrapped = withConcurrency(withResilience(new GoogleTts(creds)), 8);
  const answer = wavSynthesizer({ seconds: 0.2 });
  const request = { input: { text: 'Hello.' }, voice: { languageCode: 'en-US' }, audioConfig: { audioEncoding: 'LINEAR16', sampleRateHertz: 24_000 } };
  const rows = await interleave(300, [
    {
      label: 'grpc-js client, no google-gax (baseline)',
      run: async () => {
        server.synthesizeHandlers.push(answer);
        await raw.synthesize(request);
      },
    },
    {
      label: 'GoogleTts (google-gax + WAV strip)',
      run: async () => {
        server.synthesizeHandlers.push(answer);
        await firstOf(bare.synthesize('Hello.', { signal: signal() }));
      },
    },
    {
      label: '+ withResilience + withConcurrency(8)',
      run: async () => {
        server.synthesizeHandlers.push(answer);
        await firstOf(wrapped.synthesize('Hello.', { signal: signal() }));
      },
    },
  ]);
  printRows('Google SynthesizeSpeech on a loopback gRPC server — time to first chunk, 300 calls each', rows);
  raw.close();
  await server.close();
}

console.log(`bench:providers — Node ${process.version}, ${process.platform}/${process.arch}`);
await benchLocalTts();
await benchOpenAiOverhead();
await benchGoogleOverhead();
