/**
 * N concurrent voice sessions over WebSocket audio, each streaming real fixture speech in real time
 * (hello.16k.wav, then 1.6 s of silence, over and over; bench/speakers.ts) against a server in its own
 * process with real Silero VAD and instant fake providers (bench/sessions-server.ts). Per N it prints:
 *
 *  - the server's event-loop delay p50 / p99 / max (monitorEventLoopDelay: how long a due callback — an
 *    inbound frame, a playout tick — waited for the loop);
 *  - inbound lag, client → VAD, p50 / p99 / max: from the client handing frame k to ws.send() to the
 *    frame reaching the session's VAD stream (the window it completed was pushed), and to that window
 *    having been scored (the cross-session batch ran). Send times travel on a side channel, joined
 *    per connection and frame number (see bench/sessions-server.ts); the two clocks are aligned by the
 *    smallest-RTT round trip, its RTT / 2 printed as the uncertainty;
 *  - how busy the server's main thread was (event-loop utilization: the share of time it ran callbacks),
 *    server CPU (all threads — the VAD worker too; 100 % = one core, user / system), RSS per session
 *    ((RSS with N sessions − RSS before any) / N) and in all;
 *  - turns, counted per session against the utterances it sent: completed/expected (a reply ended
 *    whole), split (an utterance got more than one reply), missed (none);
 *  - how late the client itself sent frames (the load generator shares the 2 cores).
 *
 *   npx tsx bench/sessions.ts [N ...] [--seconds S]      default: 100 200 400, 20 s each
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/sessions.ts 400   (a CPU profile of the server process)
 */
import { clockOffset, countTurns, drive, getJson, helloCycle, openSpeakers, startSessionsServer, type TurnCounts } from './speakers.js';
import { table } from './stats.js';

const args = process.argv.slice(2);
const secondsAt = args.indexOf('--seconds');
const RUN_MS = secondsAt >= 0 ? Number(args[secondsAt + 1]) * 1000 : 20_000;
const counts = args.filter((_, i) => i !== secondsAt && i !== secondsAt + 1).map(Number).filter((n) => n > 0);
const SESSIONS = counts.length > 0 ? counts : [100, 200, 400];
/** After the last frame: time for the last replies to finish. */
const GRACE_MS = 2_000;

const cycle = helloCycle();

interface Stats {
  sessions: number;
  turns: number;
  cpuPercent: number;
  rssBytes: number;
  loopDelayMs: { p50: number; p99: number; max: number };
  mainThreadBusyPercent: number;
  cpuUserPercent: number;
  cpuSystemPercent: number;
}
interface Lag {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

interface Run {
  n: number;
  stats: Stats;
  rssBefore: number;
  toInput: Lag;
  toScored: Lag;
  clock: { offsetMs: number; uncertaintyMs: number };
  turns: TurnCounts;
  sendLate: { p99: number; max: number };
}

async function run(n: number): Promise<Run> {
  const server = await startSessionsServer({ env: { BENCH_INBOUND: '1' } });
  const before = await getJson<{ rss: number }>(`${server.base}/bench/memory`);
  const frames = Math.floor(RUN_MS / 20);
  const speakers = await openSpeakers(server.url, n, cycle, frames);
  const clock = await clockOffset(server.base);
  await fetch(`${server.base}/bench/reset`, { method: 'POST' });
  const driven = await drive(speakers, RUN_MS);
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS));
  const stats = await getJson<Stats>(`${server.base}/bench/stats`);
  const inbound = await getJson<{ toInput: Lag; toScored: Lag; unmatched: number }>(`${server.base}/bench/inbound`, {
    method: 'POST',
    body: JSON.stringify({
      offsetMs: clock.offsetMs,
      fromMs: driven.startWallMs,
      sessions: speakers.map((s) => ({ port: s.port, sentAt: Array.from(s.sentAt ?? [], (t) => Math.round(t * 100) / 100) })),
    }),
  });
  const turns = countTurns(speakers);
  await Promise.all(speakers.map((s) => s.close()));
  await server.stop();
  return { n, stats, rssBefore: before.rss, toInput: inbound.toInput, toScored: inbound.toScored, clock, turns, sendLate: driven.sendLate };
}

console.log(
  `bench/sessions: N sessions × websocket PCM16 16 kHz (hello.16k.wav + 1.6 s silence, looped), real Silero VAD, instant fake providers, ${RUN_MS / 1000} s of real-time audio each`,
);
const runs: Run[] = [];
for (const n of SESSIONS) {
  runs.push(await run(n));
  const r = runs.at(-1)!;
  console.log(`  ${n} sessions done: event-loop delay p99 ${r.stats.loopDelayMs.p99.toFixed(1)} ms, inbound → VAD p99 ${r.toInput.p99.toFixed(1)} ms, turns ${r.turns.completed}/${r.turns.expected}`);
}
const mb = (bytes: number): number => bytes / 1e6;
const column = (label: string, value: (r: Run) => string | number): (string | number)[] => [label, ...runs.map(value)];
console.log('');
console.log(
  table(
    ['sessions', ...runs.map((r) => String(r.n))],
    [
      column('server event-loop delay p50 ms', (r) => r.stats.loopDelayMs.p50),
      column('server event-loop delay p99 ms', (r) => r.stats.loopDelayMs.p99),
      column('server event-loop delay max ms', (r) => r.stats.loopDelayMs.max),
      column('inbound lag, client send → VAD input p50 ms', (r) => r.toInput.p50),
      column('inbound lag, client send → VAD input p99 ms', (r) => r.toInput.p99),
      column('inbound lag, client send → VAD input max ms', (r) => r.toInput.max),
      column('  … → window scored (batched inference) p50 ms', (r) => r.toScored.p50),
      column('  … → window scored (batched inference) p99 ms', (r) => r.toScored.p99),
      column('  windows measured', (r) => r.toInput.n),
      column('  clock alignment ± ms', (r) => r.clock.uncertaintyMs),
      column('server main thread busy % (event-loop utilization)', (r) => r.stats.mainThreadBusyPercent),
      column('server CPU % (all threads, 100 = 1 core)', (r) => r.stats.cpuPercent),
      column('  of which user / system %', (r) => `${r.stats.cpuUserPercent.toFixed(0)} / ${r.stats.cpuSystemPercent.toFixed(0)}`),
      column('RSS per session MB', (r) => mb(r.stats.rssBytes - r.rssBefore) / r.n),
      column('RSS MB (before sessions)', (r) => `${mb(r.stats.rssBytes).toFixed(0)} (${mb(r.rssBefore).toFixed(0)})`),
      column('turns completed / expected', (r) => `${r.turns.completed}/${r.turns.expected}`),
      column('  utterances split into 2+ turns', (r) => r.turns.split),
      column('  utterances with no reply', (r) => r.turns.missed),
      column('  replies started / interrupted', (r) => `${r.turns.replies}/${r.turns.interrupted}`),
      column('  error messages', (r) => r.turns.errors),
      column('client send late p99 / max ms', (r) => `${r.sendLate.p99.toFixed(1)} / ${r.sendLate.max.toFixed(0)}`),
    ],
  ),
);
console.log('\ntargets: 400 sessions on 2 cores with event-loop delay p99 < 20 ms and < 2 MB RSS per session; every expected turn completed, none split');
console.log('seed project (LLMRTC) here: audio broke up at 25 sessions; at 50 no turn completed and the server grew to 3.1 GB');
