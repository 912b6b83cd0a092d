/**
 * N concurrent voice sessions over WebSocket audio, each streaming real fixture speech in real time
 * (hello.16k.wav then silence, over and over) against a server with real Silero VAD and instant
 * fake providers. Prints, per N: the server's event-loop lag (the delay any inbound frame waits
 * before it is processed) p50/p99, server CPU %, RSS per session, and turns completed vs expected.
 *
 *   npx tsx bench/sessions.ts [N ...]      default: 50 100 200
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { float32ToInt16 } from '../src/audio/frame.js';
import { readWav } from '../src/audio/wav.js';
import { table } from './stats.js';

const counts = process.argv.slice(2).map(Number).filter((n) => n > 0);
const SESSIONS = counts.length > 0 ? counts : [50, 100, 200];
const RUN_MS = 20_000;

const wav = readWav(new Uint8Array(readFileSync(fileURLToPath(new URL('../test/fixtures/hello.16k.wav', import.meta.url)))));
const speech = float32ToInt16(wav.samples);
// One cycle: the utterance, then 1.6 s of silence (VAD hangover + the agent's reply).
const cycle = new Int16Array(speech.length + 16_000 * 1.6);
cycle.set(speech);
const FRAME = 320; // 20 ms at 16 kHz
const cycleMs = (cycle.length / 16_000) * 1000;

async function startServer(): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./sessions-server.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<{ url: string; port: number }>((resolve) => child.once('message', (m) => resolve(m as { url: string; port: number })));
  return {
    ...info,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

async function run(n: number): Promise<(string | number)[]> {
  const server = await startServer();
  const base = `http://127.0.0.1:${server.port}`;
  const before = (await (await fetch(`${base}/bench/stats`)).json()) as { rssBytes: number };
  const sockets: WebSocket[] = [];
  let replies = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(server.url, { perMessageDeflate: false });
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } }));
    ws.on('message', (data, binary) => {
      if (!binary && String(data).startsWith('{"type":"reply.done"')) replies++;
    });
    sockets.push(ws);
  }
  await fetch(`${base}/bench/reset`, { method: 'POST' });
  // Stagger the sessions over one cycle so speech does not start in lockstep.
  const start = performance.now();
  let frame = 0;
  const totalFrames = Math.floor(RUN_MS / 20);
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.floor((performance.now() - start) / 20);
      while (frame <= due && frame < totalFrames) {
        for (let i = 0; i < sockets.length; i++) {
          const offset = ((frame + Math.floor((i * cycle.length) / FRAME / sockets.length)) * FRAME) % (cycle.length - FRAME);
          sockets[i]?.send(cycle.subarray(offset, offset + FRAME));
        }
        frame++;
      }
      if (frame >= totalFrames) resolve();
      else setTimeout(tick, Math.max(0, start + frame * 20 - performance.now()));
    };
    tick();
  });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const stats = (await (await fetch(`${base}/bench/stats`)).json()) as {
    sessions: number;
    turns: number;
    cpuPercent: number;
    rssBytes: number;
    loopDelayMs: { p50: number; p99: number; max: number };
  };
  for (const ws of sockets) ws.close();
  await server.stop();
  const expected = Math.floor(RUN_MS / cycleMs) * n;
  return [
    n,
    stats.loopDelayMs.p50,
    stats.loopDelayMs.p99,
    stats.loopDelayMs.max,
    stats.cpuPercent,
    (stats.rssBytes - before.rssBytes) / n / 1e6,
    stats.rssBytes / 1e6,
    `${stats.turns}/${expected}`,
    replies,
  ];
}

console.log(`bench/sessions: N sessions × websocket PCM16 16 kHz, real Silero VAD, instant fake providers, ${RUN_MS / 1000} s of real-time audio each`);
const rows: (string | number)[][] = [];
for (const n of SESSIONS) rows.push(await run(n));
console.log(
  table(['sessions', 'lag p50 ms', 'lag p99 ms', 'lag max ms', 'server CPU %', 'RSS/session MB', 'RSS MB', 'turns done/expected', 'reply.done seen'], rows),
);
console.log('targets: 200 sessions on 2 cores, p99 inbound frame lag < 20 ms, < 5 MB RSS per session');
console.log('seed project (LLMRTC) here: audio broke up at 25 sessions; at 50 no turn completed and the server grew to 3.1 GB');
