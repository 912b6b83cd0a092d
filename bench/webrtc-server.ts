/**
 * The server side of bench/webrtc: a VoiceServer with WebRTC on loopback, real Silero VAD and
 * instant fake providers (a 20-word reply, 150 ms per word = 3.0 s of agent audio per turn), its
 * WebRTC transports in `BENCH_WEBRTC_WORKERS` worker threads (`webrtc.workers`; unset = the
 * server's default, one per core; 0 = in the main thread), plus
 *
 *   POST /bench/reset     restart the CPU / event-loop / turn / RTP-send counters
 *   GET  /bench/stats     CPU, RSS, event-loop lag and busy share of every thread, completed turns
 *   GET  /bench/senders   per outbound RTP stream (SSRC): its talkspurts (one per agent reply) with
 *                         packets sent, send span and pacing spread — what left the server, to hold
 *                         against what each client received
 *
 * Started as a child process by bench/webrtc.ts so the clients' work is not counted against it.
 * The RTP send timestamps come from bench/webrtc-probe.ts, loaded into each thread that sends
 * (the transport workers through the pool's `preload`, and this thread).
 */
import { availableParallelism } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { FakeLlm, FakeStt, FakeTts } from '../src/providers/fake/index.js';
import { VoiceServer } from '../src/server/index.js';
import { WebRtcWorkerPool } from '../src/transport/webrtc-pool.js';
import { SharedVad } from '../src/vad/shared-vad.js';
import { ProcessMeter } from './process-meter.js';
import { percentile } from './stats.js';
import { PROBE_CHANNEL, report as mainReport, reset as mainReset, type ProbeReply, type ProbeReport, type ProbeRequest, type SentSpurtSummary } from './webrtc-probe.js';

export type { SentSpurtSummary } from './webrtc-probe.js';

const REPLY_TEXT = 'Sure, I can help with that. Your table for two is booked for tomorrow at seven, see you both then.';
const MS_PER_WORD = 150;

const workersEnv = process.env['BENCH_WEBRTC_WORKERS'];
const workers = workersEnv === undefined || workersEnv === '' ? availableParallelism() : Number(workersEnv);
const pool = workers > 0 ? new WebRtcWorkerPool({ workers, preload: [new URL('./webrtc-probe.ts', import.meta.url)] }) : undefined;

const vadThreadEnv = process.env['BENCH_VAD_THREAD'];
const vadThread = vadThreadEnv === 'worker' || vadThreadEnv === 'main' ? vadThreadEnv : undefined;

const meter = new ProcessMeter();
let turns = 0;
let interruptedTurns = 0;

const server = new VoiceServer({
  port: 0,
  providers: {
    stt: new FakeStt({ recognize: () => 'hello there how are you today' }),
    llm: new FakeLlm({ respond: () => [process.env['BENCH_REPLY'] ?? REPLY_TEXT] }),
    tts: new FakeTts({ sampleRate: 16_000, msPerWord: Number(process.env['BENCH_MS_PER_WORD'] ?? MS_PER_WORD) }),
  },
  webrtcHostAddresses: ['127.0.0.1'],
  // BENCH_VAD_THREAD=worker | main: where the VAD model scores batches (unset: the server's default).
  ...(vadThread === undefined ? {} : { sharedVad: new SharedVad({ thread: vadThread }) }),
  webrtc: pool === undefined ? { workers: 0 } : { pool },
  session: { limits: { maxSessions: 10_000, maxPerIp: 10_000, maxPerPrincipal: 10_000 } },
  maxMessagesPerSecond: 1_000,
  hooks: {
    onTurnEnd: (m) => {
      turns++;
      if (m.interrupted) interruptedTurns++;
    },
  },
});

const channel = new BroadcastChannel(PROBE_CHANNEL);
channel.unref();
let nextCollect = 1;
const collecting = new Map<number, (report: ProbeReport) => void>();
channel.onmessage = (event) => {
  const reply = (event as { data: ProbeReply }).data;
  collecting.get(reply.id)?.(reply.report);
};

/** Every sending thread's probe report: this thread's, and each ready worker's (500 ms at most). */
async function collect(): Promise<ProbeReport[]> {
  const reports = [mainReport()];
  const expected = pool?.workers.filter((w) => w.ready).length ?? 0;
  if (expected === 0) return reports;
  const id = nextCollect++;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      collecting.delete(id);
      resolve();
    };
    const timer = setTimeout(done, 500);
    collecting.set(id, (report) => {
      reports.push(report);
      if (reports.length > expected) done();
    });
    channel.postMessage({ type: 'collect', id } satisfies ProbeRequest);
  });
  return reports;
}

/** Monotonic µs (the clock of V8's .cpuprofile timestamps) at the last reset: the measured window. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
let windowStartUs = monotonicUs();
server.route('POST', '/bench/reset', (_req, res) => {
  meter.reset();
  mainReset();
  channel.postMessage({ type: 'reset' } satisfies ProbeRequest);
  windowStartUs = monotonicUs();
  turns = 0;
  interruptedTurns = 0;
  res.end('{}');
});
server.route('GET', '/bench/stats', async (_req, res) => {
  const reports = await collect();
  const workerReports = reports.filter((r) => !r.mainThread);
  const first = reports.flatMap((r) => r.writeDelayFirst).sort((a, b) => a - b);
  const rest = reports.flatMap((r) => r.writeDelayRest).sort((a, b) => a - b);
  const lastSend = Math.max(0, ...reports.map((r) => r.lastSendEpochMs));
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      sessions: server.sessions,
      turns,
      interruptedTurns,
      ...meter.figures(),
      webrtcWorkers: workers,
      /** CPU time of the main thread and of each transport worker (1 core = 100), and their event loops' busy share. */
      mainCpuPercent: reports.find((r) => r.mainThread)?.cpuPercent ?? null,
      workerCpuPercent: workerReports.map((r) => r.cpuPercent ?? null),
      /** GC pauses per thread (main first): ms per second of wall time, and the longest. */
      gc: [...reports.filter((r) => r.mainThread), ...workerReports].map((r) => r.gc),
      mainBusyPercent: (reports.find((r) => r.mainThread)?.utilization ?? 0) * 100,
      workerBusyPercent: workerReports.map((r) => r.utilization * 100),
      workerLoopDelayMs: workerReports.map((r) => r.loopDelayMs),
      window: { startUs: windowStartUs, endUs: monotonicUs() },
      /** Time since the last agent RTP packet left (replies still playing out when > 0 and small). */
      rtpIdleMs: lastSend === 0 ? 1e9 : Date.now() - lastSend,
      /** RTP send call → datagram handed to the socket (ms): first packet of each reply vs the rest. */
      writeDelayMs: { firstP50: percentile(first, 50), firstMax: first.at(-1) ?? 0, restP99: percentile(rest, 99) },
    }),
  );
});
server.route('GET', '/bench/senders', async (_req, res) => {
  const out: Record<string, SentSpurtSummary[]> = {};
  for (const r of await collect()) Object.assign(out, r.streams);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(out));
});

const address = await server.start();
process.send?.({ url: address.url, port: address.port });
process.once('disconnect', () => process.exit(0)); // the bench that started it is gone
process.on('message', (message) => {
  if (message === 'stop') void server.stop().then(async () => {
    await pool?.close();
    process.exit(0);
  });
});
