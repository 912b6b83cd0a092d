/**
 * Latency and pacing as a client hears them, against a VoiceServer in its own process (real Silero
 * VAD, instant fake providers), over loopback WebSocket audio streamed in real time:
 *
 *  1. end to end: the moment the speech in the streamed audio ends → the first agent audio frame
 *     received (the VAD's minSilenceMs is part of it by design; the rest is the runtime);
 *  2. barge-in: speech onset in the streamed audio → the agent's audio stops arriving;
 *  3. playout: an 8.8 s reply — how long it takes to arrive, alone and with 100 sessions replying.
 *
 *   npx tsx bench/latency.ts
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { float32ToInt16 } from '../src/audio/frame.js';
import { readWav } from '../src/audio/wav.js';
import { DEFAULT_VAD_CONFIG } from '../src/vad/config.js';
import { summarize, table } from './stats.js';

const RATE = 16_000;
const FRAME = 320;

function fixture(name: string): Int16Array {
  return float32ToInt16(readWav(new Uint8Array(readFileSync(fileURLToPath(new URL(`../test/fixtures/${name}`, import.meta.url))))).samples);
}

async function startServer(env: Record<string, string>): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./sessions-server.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const info = await new Promise<{ url: string; port: number }>((resolve) => child.once('message', (m) => resolve(m as { url: string; port: number })));
  return { url: info.url, port: info.port, stop: () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.send('stop'))) };
}

interface Session {
  ws: WebSocket;
  frames: number[];
  texts: { t: number; type: string }[];
}

async function open(url: string): Promise<Session> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve) => ws.once('open', resolve));
  const session: Session = { ws, frames: [], texts: [] };
  ws.on('message', (data, binary) => {
    const t = performance.now();
    if (binary) session.frames.push(t);
    else session.texts.push({ t, type: (JSON.parse(String(data)) as { type: string }).type });
  });
  ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: RATE } }));
  while (!session.texts.some((m) => m.type === 'session.ready')) await new Promise((r) => setTimeout(r, 5));
  return session;
}

/** Streams `pcm` in real time; returns the wall time at which sample `markSample` was sent. */
async function stream(session: Session, pcm: Int16Array, markSample: number): Promise<number> {
  const start = performance.now();
  let mark = Number.NaN;
  for (let n = 0; n * FRAME < pcm.length; n++) {
    const due = start + n * 20;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    session.ws.send(pcm.subarray(n * FRAME, (n + 1) * FRAME));
    if (Number.isNaN(mark) && (n + 1) * FRAME >= markSample) mark = start + ((markSample / RATE) * 1000);
  }
  return mark;
}

interface EndToEnd {
  total: number[];
  /** Speech end in the audio → the server's vad.speech_end message arrives. */
  vad: number[];
  /** vad.speech_end arrives → the first agent audio frame arrives. */
  runtime: number[];
}

async function endToEnd(): Promise<EndToEnd> {
  const server = await startServer({ BENCH_REPLY: 'Fine, thanks.', BENCH_MS_PER_WORD: '150' });
  const hello = fixture('padded-hello.16k.wav'); // speech ends at 2.41 s (sox), then 1.85 s of silence
  const speechEnd = Math.round(2.41 * RATE);
  const results: EndToEnd = { total: [], vad: [], runtime: [] };
  const sessions = await Promise.all(Array.from({ length: 8 }, () => open(server.url)));
  await Promise.all(
    sessions.map(async (session, i) => {
      await new Promise((r) => setTimeout(r, i * 130)); // stagger
      for (let round = 0; round < 3; round++) {
        const before = session.frames.length;
        const textsBefore = session.texts.length;
        const mark = await stream(session, hello, speechEnd);
        while (session.texts.filter((m) => m.type === 'reply.done').length <= round) await new Promise((r) => setTimeout(r, 10));
        const first = session.frames[before];
        const vadEnd = session.texts.slice(textsBefore).find((m) => m.type === 'vad.speech_end')?.t;
        if (first !== undefined && vadEnd !== undefined) {
          results.total.push(first - mark);
          results.vad.push(vadEnd - mark);
          results.runtime.push(first - vadEnd);
        }
      }
    }),
  );
  for (const s of sessions) s.ws.close();
  await server.stop();
  return results;
}

async function bargeIn(): Promise<number[]> {
  const long = `${Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ')}.`;
  const server = await startServer({ BENCH_REPLY: long, BENCH_MS_PER_WORD: '150' });
  const stop = fixture('stop.16k.wav'); // speech from 0.00 s
  const results: number[] = [];
  for (let round = 0; round < 8; round++) {
    const session = await open(server.url);
    session.ws.send(JSON.stringify({ type: 'user.text', text: 'talk' }));
    while (session.frames.length < 50) await new Promise((r) => setTimeout(r, 5)); // 1 s of reply audio
    const onset = await (async () => {
      const mark = performance.now();
      void stream(session, stop, 0);
      return mark;
    })();
    await new Promise((r) => setTimeout(r, 600));
    // The last agent frame that arrived before the pause.
    const afterOnset = session.frames.filter((t) => t >= onset);
    const last = afterOnset.length > 0 ? (afterOnset.at(-1) as number) : onset;
    results.push(last - onset);
    session.ws.close();
  }
  await server.stop();
  return results;
}

const serverLoop: Record<number, { p99: number; max: number }> = {};
/** Per session, at the server's egress: time the frames took to leave minus the audio they carry. */
const serverEgress: Record<number, number[]> = {};

async function playout(sessionsCount: number): Promise<number[]> {
  // 44 words × 200 ms = 8.8 s, the seed project's measured reply.
  const reply = `${Array.from({ length: 44 }, (_, i) => `w${i}`).join(' ')}.`;
  const server = await startServer({ BENCH_REPLY: reply, BENCH_MS_PER_WORD: '200' });
  const sessions = await Promise.all(Array.from({ length: sessionsCount }, () => open(server.url)));
  await fetch(`http://127.0.0.1:${server.port}/bench/reset`, { method: 'POST' });
  for (const s of sessions) s.ws.send(JSON.stringify({ type: 'user.text', text: 'talk' }));
  await new Promise((r) => setTimeout(r, 11_000));
  const stats = (await (await fetch(`http://127.0.0.1:${server.port}/bench/stats`)).json()) as { loopDelayMs: { p99: number; max: number } };
  serverLoop[sessionsCount] = stats.loopDelayMs;
  serverEgress[sessionsCount] = (await (await fetch(`http://127.0.0.1:${server.port}/bench/egress`)).json()) as number[];
  const errors = sessions.map((s) => {
    const first = s.frames[0] ?? 0;
    const last = s.frames.at(-1) ?? 0;
    return last + 20 - first - 8800; // the last frame carries 20 ms of audio
  });
  for (const s of sessions) s.ws.close();
  await server.stop();
  return errors;
}

const ends = await endToEnd();
const e2e = summarize(ends.total);
const vadPart = summarize(ends.vad);
const runtimePart = summarize(ends.runtime);
const barge = summarize(await bargeIn());
const one = summarize(await playout(1));
const hundred = summarize(await playout(100));
const oneOut = summarize(serverEgress[1] ?? []);
const hundredOut = summarize(serverEgress[100] ?? []);
const minSilence = DEFAULT_VAD_CONFIG.minSilenceMs;

console.log('bench/latency — VoiceServer in its own process, real Silero VAD, instant fake providers, loopback WebSocket audio in real time\n');
console.log(
  table(
    ['measure', 'n', 'p50 ms', 'p99 ms', 'max ms', 'target', 'seed (LLMRTC) here'],
    [
      ['speech end in audio → first agent audio', e2e.n, e2e.p50, e2e.p99, e2e.max, `≤ minSilenceMs + 40 = ${minSilence + 40}`, '1940 (p50)'],
      ['  VAD: speech end → vad.speech_end at the client', vadPart.n, vadPart.p50, vadPart.p99, vadPart.max, `minSilenceMs = ${minSilence}`, '≈ 1600'],
      ['  runtime: vad.speech_end → first agent audio', runtimePart.n, runtimePart.p50, runtimePart.p99, runtimePart.max, '≤ 40', '≈ 340'],
      ['barge-in: speech onset → agent audio stops', barge.n, barge.p50, barge.p99, barge.max, '≤ 100', '—'],
      ['8.8 s reply, 1 session: leaving the server − 8.8 s', oneOut.n, oneOut.p50, oneOut.p99, oneOut.max, '± 20', '+400'],
      ['  … arriving at the client − 8.8 s', one.n, one.p50, one.p99, one.max, '', ''],
      ['8.8 s reply, 100 sessions at once: leaving the server', hundredOut.n, hundredOut.p50, hundredOut.p99, hundredOut.max, '± 20', '+41100 (25 sessions)'],
      ['  … arriving at the client (its own process, same 2 cores)', hundred.n, hundred.p50, hundred.p99, hundred.max, '', ''],
    ],
  ),
);
console.log(`\nserver event-loop lag during the 100-session playout: p99 ${serverLoop[100]?.p99.toFixed(1)} ms, max ${serverLoop[100]?.max.toFixed(1)} ms`);
