/**
 * VAD throughput: real fixture audio through N concurrent streams, as fast as possible.
 *
 *   npx tsx bench/vad.ts        (or npm run bench:vad)
 *
 * "shared" = one ORT session for the process, windows of all streams batched (src/vad/shared-vad.ts).
 * "per-stream" = one ORT session per stream, every inference has batch size 1 (what the seed did).
 * µs/frame/stream = wall time ÷ (streams × windows); RTF = wall time ÷ audio time processed
 * (summed over streams; < 1 means faster than real time). Then a few session-option variants at N=100.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { InferenceSession } from 'onnxruntime-node';
import { readWav } from '../src/audio/wav.js';
import { DEFAULT_SESSION_OPTIONS, loadSileroModel, SILERO_WINDOW, VAD_FRAME_MS } from '../src/vad/model.js';
import { SharedVad, type VadInferenceStream } from '../src/vad/shared-vad.js';

const FILES = ['booking.16k.wav', 'digits.16k.wav', 'hello.16k.wav', 'stop.16k.wav', 'weather.16k.wav', 'booking-noisy.16k.wav'];
const audio = concat(FILES.map((f) => readWav(readFileSync(new URL(`../test/fixtures/${f}`, import.meta.url))).samples));
const totalWindows = Math.floor(audio.length / SILERO_WINDOW);

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Windows per stream for a run with n streams (bounded total work keeps the bench ~1 min). */
function windowsFor(n: number): number {
  return Math.max(40, Math.min(totalWindows, Math.floor(60_000 / n)));
}

/** Pushes `windows` windows on each stream (stream i starts at a different place in the audio) and waits for all. */
async function drive(streams: VadInferenceStream[], windows: number): Promise<number> {
  let outstanding = streams.length * windows;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const done = (error: unknown): void => {
      if (error !== undefined) reject(error as Error);
      else if (--outstanding === 0) resolve();
    };
    streams.forEach((stream, i) => {
      const start = (i * 37) % totalWindows;
      for (let k = 0; k < windows; k++) {
        const w = (start + k) % totalWindows;
        stream.push(audio.subarray(w * SILERO_WINDOW, (w + 1) * SILERO_WINDOW), done);
      }
    });
  });
  return performance.now() - started;
}

interface Row {
  readonly us: number;
  readonly fps: number;
  readonly rtf: number;
  readonly rssMb: number;
  readonly batch: number;
}

function row(ms: number, n: number, windows: number, batch: number): Row {
  const frames = n * windows;
  return {
    us: (ms * 1000) / frames,
    fps: frames / (ms / 1000),
    rtf: ms / (frames * VAD_FRAME_MS),
    rssMb: process.memoryUsage().rss / 2 ** 20,
    batch,
  };
}

async function shared(n: number, sessionOptions?: InferenceSession.SessionOptions): Promise<Row> {
  const vad = new SharedVad(sessionOptions === undefined ? {} : { sessionOptions });
  await vad.warmUp();
  const streams = Array.from({ length: n }, () => vad.openStream());
  await drive(streams, 3); // warm the arena for this batch size
  const windows = windowsFor(n);
  const ms = await drive(streams, windows);
  const result = row(ms, n, windows, vad.stats.largestBatch);
  for (const s of streams) s.close();
  await vad.close();
  return result;
}

async function perStream(n: number): Promise<Row> {
  const vads = await Promise.all(Array.from({ length: n }, async () => new SharedVad({ model: await loadSileroModel() })));
  const streams = vads.map((v) => v.openStream());
  await drive(streams, 3);
  const windows = Math.max(40, Math.floor(windowsFor(n) / 4));
  const ms = await drive(streams, windows);
  const result = row(ms, n, windows, 1);
  for (const v of vads) await v.close();
  return result;
}

const fmt = (v: number, digits = 1): string => v.toFixed(digits).padStart(9);

console.log(`voxstate VAD bench — Silero v5, onnxruntime-node, Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`);
console.log(`audio: ${FILES.length} fixtures, ${totalWindows} windows of ${VAD_FRAME_MS} ms; session options ${JSON.stringify(DEFAULT_SESSION_OPTIONS)}\n`);
console.log('streams | shared: µs/frame/stream   frames/s       RTF  batch  RSS MB | per-stream: µs/frame/stream   frames/s  RSS MB | speed-up');
// All shared runs first, so the RSS column is not inflated by the per-stream sessions created later.
const sharedRows = new Map<number, Row>();
for (const n of [1, 10, 100, 500]) sharedRows.set(n, await shared(n));
const perStreamRows = new Map<number, Row>();
for (const n of [1, 10, 100]) perStreamRows.set(n, await perStream(n));
for (const [n, s] of sharedRows) {
  const p = perStreamRows.get(n);
  const line =
    `${String(n).padStart(7)} | ${fmt(s.us)}               ${fmt(s.fps, 0)} ${fmt(s.rtf, 4)} ${String(s.batch).padStart(6)} ${fmt(s.rssMb, 0)} | ` +
    (p === undefined
      ? `${'—'.padStart(27)} ${'—'.padStart(10)} ${'—'.padStart(7)} | ${'—'.padStart(7)}`
      : `${fmt(p.us).padStart(27)} ${fmt(p.fps, 0).padStart(10)} ${fmt(p.rssMb, 0).padStart(7)} | ${(p.us / s.us).toFixed(1).padStart(7)}×`);
  console.log(line);
}
console.log('(RSS = process RSS after the run; per-stream rows ran after all shared rows.)');

console.log('\nsession options at 100 streams (shared session):');
const variants: Array<[string, InferenceSession.SessionOptions]> = [
  ['default (1 thread, sequential, graph opt all)', DEFAULT_SESSION_OPTIONS],
  ['intraOpNumThreads 2', { ...DEFAULT_SESSION_OPTIONS, intraOpNumThreads: 2 }],
  ['graphOptimizationLevel basic', { ...DEFAULT_SESSION_OPTIONS, graphOptimizationLevel: 'basic' }],
  ['graphOptimizationLevel disabled', { ...DEFAULT_SESSION_OPTIONS, graphOptimizationLevel: 'disabled' }],
  ['ORT defaults (no options)', {}],
];
for (const [name, options] of variants) {
  const r = await shared(100, options);
  console.log(`  ${name.padEnd(48)} ${fmt(r.us)} µs/frame/stream`);
}
