/**
 * Motion relay benchmark: N concurrent Motion links against the local Motion Server, each streaming
 * TTS-rate audio (24 kHz, 20 ms chunks, resampled to 16 kHz by the link) in real time.
 *
 * Prints the relay latency added per envelope — from the envelope being read off the client socket
 * to the `motion.frames` event leaving the link actor — as p50/p99, and the keyframes per second
 * each link receives. Targets (docs/DESIGN): p99 < 2 ms, 25 fps sustained.
 *
 *   npm run bench:motion               # 100 links, 20 s of streaming
 *   npm run bench:motion -- --links 20 --seconds 10
 *
 * The Motion Server runs in a child process (as a hosted one would be elsewhere), started through
 * the same `runMotionServer(argv)` the `voxstate motion-server` command uses.
 */
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createActor, type Actor } from 'xstate';
import { peekEnvelope } from '../src/motion/protocol/index.js';
import { createMotionLinkActor, type MotionLinkLogic } from '../src/motion/link.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    links: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    'reply-seconds': { type: 'string', default: '4' },
  },
});
const LINKS = Number(values.links);
const SECONDS = Number(values.seconds);
const REPLY_SECONDS = Number(values['reply-seconds']);
const TTS_RATE = 24000;
const CHUNK_MS = 20;
const CHUNK = (TTS_RATE * CHUNK_MS) / 1000;
const API_KEY = 'bench-key';

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** TTS-like audio: a voiced buzz under a syllable envelope, one reply long. */
function reply(seconds: number): Int16Array {
  const out = new Int16Array(Math.round(seconds * TTS_RATE));
  for (let i = 0; i < out.length; i += 1) {
    const t = i / TTS_RATE;
    out[i] = Math.round(10000 * Math.max(0, Math.sin(2 * Math.PI * 3.5 * t)) * Math.sin(2 * Math.PI * 150 * t));
  }
  return out;
}

async function startServerProcess(): Promise<{ ingress: string; console: string; stop: () => void }> {
  const runUrl = new URL('../src/motion/local-server/run.ts', import.meta.url).href;
  const code = `const m = await import(${JSON.stringify(runUrl)}); await m.runMotionServer(['--port', '0', '--api-key', ${JSON.stringify(API_KEY)}, '--app-id', 'bench'], { logger: undefined });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, VOXSTATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const urls = await new Promise<{ ingress: string; console: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('motion server did not start')), 15_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      const ingress = /ingressEndpointUrl: (\S+)/.exec(output)?.[1];
      const consoleUrl = /consoleEndpointUrl: (\S+)/.exec(output)?.[1];
      if (ingress !== undefined && consoleUrl !== undefined) {
        clearTimeout(timer);
        resolve({ ingress, console: consoleUrl });
      }
    });
    child.once('exit', (exitCode) => reject(new Error(`motion server exited (${exitCode})`)));
  });
  return { ...urls, stop: () => child.kill('SIGTERM') };
}

async function main(): Promise<void> {
  const server = await startServerProcess();
  const logic = createMotionLinkActor({
    apiKey: API_KEY,
    appId: 'bench',
    avatarId: 'bench-avatar',
    consoleEndpointUrl: server.console,
    ingressEndpointUrl: server.ingress,
    sampleRate: 16000,
  });
  const latencies = new Float64Array(LINKS * SECONDS * 30);
  let latencyCount = 0;
  const keyframes = new Array<number>(LINKS).fill(0);
  /** keyframes received per link per wall-clock second of the streaming window. */
  const buckets: number[][] = Array.from({ length: LINKS }, () => new Array<number>(SECONDS + 2).fill(0));
  let measuring = false;
  let streamStart = 0;
  const actors: Array<Actor<MotionLinkLogic>> = [];
  let ready = 0;
  let errors = 0;

  for (let i = 0; i < LINKS; i += 1) {
    const actor = createActor(logic, { input: {} });
    actor.on('motion.frames', (event) => {
      const now = performance.now();
      if (!measuring) return;
      if (latencyCount < latencies.length) latencies[latencyCount++] = now - event.receivedAt;
      let count = 0;
      for (const frame of event.frames) count += peekEnvelope(frame).animation?.keyframeCount ?? 0;
      keyframes[i] = (keyframes[i] ?? 0) + count;
      const bucket = buckets[i];
      const second = Math.floor((now - streamStart) / 1000);
      if (bucket !== undefined && second >= 0 && second < bucket.length) bucket[second] = (bucket[second] ?? 0) + count;
    });
    actor.on('motion.error', () => (errors += 1));
    actors.push(actor);
  }
  const connectStart = performance.now();
  for (const actor of actors) actor.start();
  await new Promise<void>((resolve, reject) => {
    const check = setInterval(() => {
      ready = actors.filter((a) => a.getSnapshot().matches({ live: 'ready' })).length;
      if (ready === LINKS) {
        clearInterval(check);
        resolve();
      } else if (performance.now() - connectStart > 20_000) {
        clearInterval(check);
        reject(new Error(`only ${ready}/${LINKS} links ready after 20 s`));
      }
    }, 20);
  });
  write(`motion bench: ${LINKS} links ready in ${(performance.now() - connectStart).toFixed(0)} ms; streaming ${SECONDS} s of 24 kHz TTS audio each in ${CHUNK_MS} ms chunks (replies of ${REPLY_SECONDS} s)`);

  const audio = reply(REPLY_SECONDS);
  // Warm-up (JIT, first-use code generation in protobufjs, resampler state): one short reply per link.
  for (const actor of actors) actor.send({ type: 'motion.audio', pcm: audio.subarray(0, TTS_RATE / 2), sampleRate: TTS_RATE, end: true });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  measuring = true;

  // Drift-free real-time pacing: each link is due chunk k at start + offset + k × 20 ms.
  const chunksPerReply = Math.ceil(audio.length / CHUNK);
  const totalChunks = Math.round((SECONDS * 1000) / CHUNK_MS);
  const sent = new Array<number>(LINKS).fill(0);
  const offsets = Array.from({ length: LINKS }, (_, i) => (i * CHUNK_MS) / LINKS);
  streamStart = performance.now();
  let maxLag = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - streamStart;
      let done = true;
      for (let i = 0; i < LINKS; i += 1) {
        const actor = actors[i];
        if (actor === undefined) continue;
        const due = Math.min(totalChunks, Math.floor((elapsed - (offsets[i] ?? 0)) / CHUNK_MS) + 1);
        while ((sent[i] ?? 0) < due) {
          const k = sent[i] ?? 0;
          maxLag = Math.max(maxLag, elapsed - ((offsets[i] ?? 0) + k * CHUNK_MS));
          const inReply = k % chunksPerReply;
          const end = inReply === chunksPerReply - 1 || k === totalChunks - 1;
          actor.send({ type: 'motion.audio', pcm: audio.subarray(inReply * CHUNK, (inReply + 1) * CHUNK), sampleRate: TTS_RATE, end });
          sent[i] = k + 1;
        }
        if ((sent[i] ?? 0) < totalChunks) done = false;
      }
      if (done) resolve();
      else setTimeout(tick, 5);
    };
    tick();
  });
  await new Promise((resolve) => setTimeout(resolve, 500)); // let the last envelopes arrive

  const sorted = latencies.slice(0, latencyCount).sort();
  // Sustained rate: every full second of the streaming window except the first and the last.
  const steady = buckets.flatMap((bucket) => bucket.slice(1, SECONDS - 1));
  const fpsSorted = Float64Array.from(steady).sort();
  const expected = SECONDS * 25;
  write(`envelopes relayed: ${latencyCount} (${(latencyCount / LINKS).toFixed(0)} per link; ${expected} keyframes of audio time expected per link)`);
  write(`relay latency per envelope (socket read → motion.frames): p50 ${(percentile(sorted, 50) * 1000).toFixed(1)} µs, p99 ${(percentile(sorted, 99) * 1000).toFixed(1)} µs, max ${((sorted.at(-1) ?? 0) * 1000).toFixed(1)} µs  (target p99 < 2 ms)`);
  write(
    `keyframes per second per link (each 1 s window of each link, ${fpsSorted.length} windows): min ${fpsSorted[0] ?? 0}, p1 ${percentile(fpsSorted, 1)}, median ${percentile(fpsSorted, 50)}, max ${fpsSorted.at(-1) ?? 0}  (target 25 sustained)`,
  );
  loopDelay.disable();
  write(`client event loop delay: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms`);
  write(`keyframes received per link: min ${Math.min(...keyframes)}, max ${Math.max(...keyframes)}; worst send lag ${maxLag.toFixed(1)} ms; motion.error events ${errors}`);

  for (const actor of actors) actor.send({ type: 'motion.close' });
  server.stop();
}

await main();
