/**
 * Motion relay benchmark: N avatar sessions end to end. Three processes on loopback, as deployed:
 *
 *   Motion Server (bench/motion-server.ts, forked) ──envelopes──▶ VoiceServer (this process:
 *   sessions, Motion links, the relay) ──avatar.frames──▶ N WebSocket clients (bench/motion-clients.ts, forked)
 *
 * Every session speaks one long reply whose TTS streams in real time (40 ms of 24 kHz audio every
 * 40 ms, scheduled against its start), so the Motion Server animates it at 25 fps as it arrives.
 *
 * Figures (a table; targets from DESIGN.md: relay p99 < 2 ms, 25 fps sustained):
 * - `relay Motion Server → client`: from the Motion Server handing animation envelope k of a req_id
 *   to its socket to the client's WebSocket receiving the avatar.frames that carries it. Both ends
 *   read the system's monotonic clock (process.hrtime: CLOCK_MONOTONIC, shared by every process on
 *   the machine) relative to one base this process hands out; the send times travel on a side channel
 *   (bench-only wrappers in the child processes) and are joined by (req_id, k) after the run.
 * - `in VoiceServer: Motion socket read → client ws.send`: what this process adds, from `ws` emitting
 *   the Motion socket's message to the avatar.frames being handed to the client's socket (they happen
 *   in one synchronous stretch; bench-only wrappers around `ws` time it). It contains the stretch the
 *   earlier version of this bench reported — socket read → `motion.frames` out of the link actor.
 * - avatar frames per second per session: envelopes received in each whole second of the window
 *   (one keyframe each, the local server's default).
 *
 *   npm run bench:motion                         # 100 sessions, 20 s measured
 *   npm run bench:motion -- --sessions 20 --seconds 10
 */
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import type { TtsChunk, TtsOptions, TtsProvider } from '../src/providers/types.js';
import { FakeLlm, FakeStt } from '../src/providers/fake/index.js';
import { VoiceServer } from '../src/server/index.js';
import { percentile, table } from './stats.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    'warmup-seconds': { type: 'string', default: '3' },
  },
});
const SESSIONS = Number(values.sessions);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values['warmup-seconds']);
/** One reply outlasts the run, so every window of the measurement is inside a reply. */
const REPLY_SECONDS = WARMUP + SECONDS + 5;
const TTS_RATE = 24_000;
const CHUNK_MS = 40;
const API_KEY = 'bench-key';
const BASE = process.hrtime.bigint();
const now = (): number => Number(process.hrtime.bigint() - BASE) / 1e6;

function write(line = ''): void {
  process.stdout.write(`${line}\n`);
}

// ------------------------------------------------------------------------ a TTS that streams in real time

/** Speech-like audio (a voiced buzz under a syllable envelope), made once: the bench's TTS costs nothing. */
const SPEECH = (() => {
  const out = new Int16Array(Math.round(REPLY_SECONDS * TTS_RATE));
  for (let i = 0; i < out.length; i += 1) {
    const t = i / TTS_RATE;
    out[i] = Math.round(10000 * Math.max(0, Math.sin(2 * Math.PI * 3.5 * t)) * Math.sin(2 * Math.PI * 150 * t));
  }
  return out;
})();

/** Streams SPEECH `CHUNK_MS` at a time, paced drift-free against its start (a streaming TTS). */
class RealtimeTts implements TtsProvider {
  readonly name = 'bench-realtime-tts';
  async *synthesize(_text: string, options: TtsOptions): AsyncIterable<TtsChunk> {
    const chunk = (TTS_RATE * CHUNK_MS) / 1000;
    const start = performance.now();
    for (let k = 0; (k + 1) * chunk <= SPEECH.length; k += 1) {
      if (options.signal.aborted) return;
      // A copy, as a provider hands over fresh buffers (the session may keep or transfer them).
      yield { pcm: SPEECH.slice(k * chunk, (k + 1) * chunk), sampleRate: TTS_RATE };
      const wait = start + (k + 1) * CHUNK_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

// ------------------------------------------------------------- in this process: Motion read → client send

// Bench-only: `ws` emits a Motion socket's message (a client-role socket here) and, in the same
// synchronous stretch, the relay hands avatar.frames to the client's socket (a server-role one).
const inProcess: number[] = [];
let readAt: number | undefined;
let measuringInProcess = false;
const emit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]): boolean {
  if (event !== 'message' || (this as unknown as { _isServer: boolean })._isServer) return emit.call(this, event, ...args);
  readAt = performance.now();
  try {
    return emit.call(this, event, ...args);
  } finally {
    readAt = undefined;
  }
};
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
  if (measuringInProcess && readAt !== undefined && typeof data === 'string' && data.startsWith('{"type":"avatar.frames"')) {
    inProcess.push(performance.now() - readAt);
  }
  return (send as (...args: unknown[]) => void).call(this, data, ...rest);
} as typeof WebSocket.prototype.send;

// ------------------------------------------------------------------------------------ the processes

function child(script: string, env: Record<string, string>): ChildProcess {
  return fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env, BENCH_CLOCK_BASE: BASE.toString(), VOXSTATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T extends { type: string }>(proc: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' from a bench process within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: T): void => {
      if (message.type !== type) return;
      clearTimeout(timer);
      proc.off('message', onMessage);
      resolve(message);
    };
    proc.on('message', onMessage);
    proc.once('exit', (code) => reject(new Error(`a bench process exited (${code}) before '${type}'`)));
  });
}

interface Sent {
  readonly type: 'sent';
  readonly reqIds: string[];
  readonly times: number[][];
}
interface Received {
  readonly type: 'received';
  readonly sessions: { conversations: string[]; times: number[][]; buckets: number[]; errors: number }[];
}

function stats(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

const ms = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(3)} ms` : 'n/a');

async function main(): Promise<void> {
  const motionProcess = child('./motion-server.ts', { BENCH_MOTION_KEY: API_KEY });
  const motion = await nextMessage<{ type: 'listening'; consoleEndpointUrl: string; ingressEndpointUrl: string }>(motionProcess, 'listening', 30_000);

  const server = new VoiceServer({
    port: 0,
    host: '127.0.0.1',
    vad: false,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => ['Let me tell you a long story.'] }), tts: new RealtimeTts() },
    session: { limits: { maxPerIp: SESSIONS, maxSessions: SESSIONS + 10 } },
    motion: {
      apiKey: API_KEY,
      appId: 'bench',
      avatarId: 'bench-avatar',
      consoleEndpointUrl: motion.consoleEndpointUrl,
      ingressEndpointUrl: motion.ingressEndpointUrl,
      sampleRate: 16000,
    },
  });
  const { url } = await server.start();

  const started = performance.now();
  const clients = child('./motion-clients.ts', { BENCH_URL: url, BENCH_SESSIONS: String(SESSIONS) });
  await nextMessage(clients, 'ready', 60_000);
  write(
    `motion bench: ${SESSIONS} sessions ready in ${(performance.now() - started).toFixed(0)} ms; each speaks one reply of ` +
      `real-time 24 kHz TTS in ${CHUNK_MS} ms chunks; ${WARMUP} s warm-up, then ${SECONDS} s measured`,
  );
  await new Promise((resolve) => setTimeout(resolve, WARMUP * 1000));

  const from = now();
  measuringInProcess = true;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const to = now();
  measuringInProcess = false;
  loopDelay.disable();

  clients.send({ type: 'stop' });
  const received = await nextMessage<Received>(clients, 'received', 30_000);
  motionProcess.send({ type: 'collect' });
  const sent = await nextMessage<Sent>(motionProcess, 'sent', 30_000);

  // Join (req_id, k): the Motion Server's send time and the client's receive time of envelope k.
  const sentBy = new Map<string, number[]>();
  sent.reqIds.forEach((reqId, i) => sentBy.set(reqId, sent.times[i] ?? []));
  const relay: number[] = [];
  let unmatched = 0;
  for (const session of received.sessions) {
    session.conversations.forEach((conversationId, i) => {
      const arrivals = session.times[i] ?? [];
      const departures = sentBy.get(conversationId);
      if (departures === undefined) {
        unmatched += arrivals.length;
        return;
      }
      for (let k = 0; k < arrivals.length; k += 1) {
        const departed = departures[k];
        const arrived = arrivals[k] as number;
        if (departed === undefined) unmatched += 1;
        else if (departed >= from && departed <= to) relay.push(arrived - departed);
      }
    });
  }
  // Whole seconds inside the window, per session.
  const firstSecond = Math.ceil(from / 1000);
  const lastSecond = Math.floor(to / 1000); // exclusive
  const fps: number[] = [];
  for (const session of received.sessions) for (let s = firstSecond; s < lastSecond; s += 1) fps.push(session.buckets[s] ?? 0);
  const fpsSorted = Float64Array.from(fps).sort();
  const errors = received.sessions.reduce((n, s) => n + s.errors, 0);

  const r = stats(relay);
  const p = stats(inProcess);
  write();
  write(
    table(
      ['figure', 'samples', 'p50', 'p99', 'max', 'target'],
      [
        ['relay Motion Server → client (socket write → client WebSocket receive)', r.n, ms(r.p50), ms(r.p99), ms(r.max), 'p99 < 2 ms'],
        ['in VoiceServer: Motion socket read → avatar.frames ws.send (incl. link-internal read → motion.frames)', p.n, ms(p.p50), ms(p.p99), ms(p.max), '—'],
      ],
    ),
  );
  write();
  write(
    table(
      ['avatar frames per second per session', 'windows', 'min', 'p1', 'median', 'max', 'target'],
      [['1 s windows inside the measured run', fpsSorted.length, fpsSorted[0] ?? 0, percentile(fpsSorted, 1), percentile(fpsSorted, 50), fpsSorted.at(-1) ?? 0, '25 sustained']],
    ),
  );
  write();
  write(
    `VoiceServer event-loop delay: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, ` +
      `max ${(loopDelay.max / 1e6).toFixed(1)} ms; envelopes not matched to a send: ${unmatched}; error messages to clients: ${errors}`,
  );

  motionProcess.send({ type: 'stop' });
  await server.stop();
}

await main();
