/**
 * Soak: N websocket sessions (default 100) talking continuously for M minutes (default 10) against a
 * server in its own process with real Silero VAD and instant fake providers — the same speakers and
 * server as bench/sessions (bench/speakers.ts, bench/sessions-server.ts), with the bench's own
 * per-frame recording off so that only the runtime's memory is measured.
 *
 * Every 30 s the server's RSS (process.memoryUsage().rss), V8 heap and active handles
 * (process.getActiveResourcesInfo().length) are sampled; at the end the least-squares slope of each
 * per minute is printed, over the whole run and over its second half (past the warm-up: JIT code,
 * V8 heap growth to its working size). Then every session is closed (`session.close`), a full GC is
 * forced (the server runs with --expose-gc), and RSS is compared with the start (before any session,
 * after a GC too): it should come back within 10 %. What the process's allocators keep for reuse does
 * not come back as RSS, so the same load is run once more for a minute: if it fits in the memory kept
 * (RSS peak no higher than during the soak), the kept memory is reused, not leaked.
 *
 *   npx tsx bench/soak.ts [sessions=100] [minutes=10]
 *   npm run bench:soak
 */
import { countTurns, drive, getJson, helloCycle, openSpeakers, startSessionsServer } from './speakers.js';
import { table } from './stats.js';

const SESSIONS = Number(process.argv[2] ?? 100);
const MINUTES = Number(process.argv[3] ?? 10);
const SAMPLE_MS = 30_000;
if (!(SESSIONS > 0) || !(MINUTES > 0)) throw new Error('usage: npx tsx bench/soak.ts [sessions=100] [minutes=10]');

interface Memory {
  sessions: number;
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  handles: number;
  byType: Record<string, number>;
}
interface Sample extends Memory {
  minute: number;
  turnsCompleted: number;
}

const mb = (bytes: number): number => bytes / 1e6;

/** Least-squares slope of y over x. */
function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return sxy / sxx;
}

const cycle = helloCycle();
const server = await startSessionsServer({ execArgv: ['--expose-gc'] });
const memory = (gc = false): Promise<Memory> => getJson<Memory>(`${server.base}/bench/memory${gc ? '?gc=1' : ''}`);

console.log(`bench/soak: ${SESSIONS} websocket sessions × ${MINUTES} min of continuous turns (hello.16k.wav + 1.6 s silence, looped), real Silero VAD, instant fake providers`);
const start = await memory(true);
const speakers = await openSpeakers(server.url, SESSIONS, cycle, 0);
const samples: Sample[] = [];
const sample = async (elapsedMs: number): Promise<void> => {
  const m = await memory();
  const s: Sample = { ...m, minute: elapsedMs / 60_000, turnsCompleted: countTurns(speakers).completed };
  samples.push(s);
  console.log(
    `  ${s.minute.toFixed(1).padStart(5)} min  RSS ${mb(s.rss).toFixed(1).padStart(7)} MB  heap ${mb(s.heapUsed).toFixed(1).padStart(6)} MB  handles ${String(s.handles).padStart(4)}  sessions ${s.sessions}  turns completed ${s.turnsCompleted}`,
  );
};
await sample(0);
const driven = await drive(speakers, MINUTES * 60_000, { everyMs: SAMPLE_MS, every: sample });
await new Promise((resolve) => setTimeout(resolve, 2_000));
await sample(MINUTES * 60_000 + 2_000);
const turns = countTurns(speakers);

await Promise.all(speakers.map((s) => s.close()));
// A closed session leaves the registry at once; give the sockets a moment to finish closing.
for (let i = 0; i < 50 && (await memory()).sessions > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
await new Promise((resolve) => setTimeout(resolve, 1_000));
const closed = await memory(true);
// The inspector (src/inspect) keeps listing an ended session for keepEndedMs (default 60 s), and
// holds on to it until then: the memory of closed sessions can only come back after that.
const KEEP_ENDED_MS = 60_000;
console.log(`  all closed; waiting ${(KEEP_ENDED_MS + 5_000) / 1000} s (the inspector lists ended sessions for 60 s)`);
await new Promise((resolve) => setTimeout(resolve, KEEP_ENDED_MS + 5_000));
const end = await memory(true);
// Memory the allocators kept (glibc's free lists, V8's and onnxruntime's arenas) shows as RSS that does
// not come back; memory that is reused is not leaked: the same load once more must fit in it.
const REUSE_MS = 60_000;
console.log(`  ${SESSIONS} new sessions for ${REUSE_MS / 1000} s: does the same load fit in the memory kept?`);
const again = await openSpeakers(server.url, SESSIONS, cycle, 0);
let reusePeak = 0;
await drive(again, REUSE_MS, { everyMs: 10_000, every: async () => void (reusePeak = Math.max(reusePeak, (await memory()).rss)) });
await Promise.all(again.map((s) => s.close()));
await server.stop();
const soakPeak = Math.max(...samples.map((s) => s.rss));

const during = samples.slice(0, -1); // the last one is after the grace period
const secondHalf = during.filter((s) => s.minute >= MINUTES / 2);
const fit = (list: readonly Sample[], y: (s: Sample) => number): number => slope(list.map((s) => ({ x: s.minute, y: y(s) })));
console.log('');
console.log(
  table(
    ['slope per minute', `whole run (${during.length} samples)`, `second half (${secondHalf.length})`, 'target'],
    [
      ['RSS MB/min', fit(during, (s) => mb(s.rss)), fit(secondHalf, (s) => mb(s.rss)), '< 1'],
      ['V8 heap used MB/min', fit(during, (s) => mb(s.heapUsed)), fit(secondHalf, (s) => mb(s.heapUsed)), ''],
      ['active handles /min', fit(during, (s) => s.handles), fit(secondHalf, (s) => s.handles), '0'],
    ],
  ),
);
const first = samples[0]!;
const last = samples.at(-1)!;
const back = (end.rss - start.rss) / start.rss;
const heapBack = (end.heapUsed - start.heapUsed) / start.heapUsed;
console.log('');
console.log(
  table(
    ['', 'RSS MB', 'V8 heap used MB', 'array buffers MB', 'handles', 'sessions'],
    [
      ['start (before any session, after a GC)', start],
      [`${SESSIONS} sessions connected`, first],
      [`after ${MINUTES} min`, last],
      ['all closed, after a GC', closed],
      ['  65 s later, after a GC', end],
    ].map(([label, m]) => {
      const x = m as Memory;
      return [label as string, mb(x.rss), mb(x.heapUsed), mb(x.arrayBuffers), x.handles, x.sessions];
    }),
  ),
);
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
console.log(`the same load again after closing: RSS peak ${mb(reusePeak).toFixed(0)} MB, against ${mb(soakPeak).toFixed(0)} MB during the soak (${signed((reusePeak - soakPeak) / soakPeak)}: kept memory is reused, not leaked, when ≤ 0)`);
console.log(`\nafter closing vs start: RSS ${signed(back)} (target within ± 10 %), V8 heap used ${signed(heapBack)}${end.handles > start.handles ? `; handles ${start.handles} → ${end.handles}: ${JSON.stringify(end.byType)}` : ''}`);
console.log(`turns completed/expected ${turns.completed}/${turns.expected}, split ${turns.split}, with no reply ${turns.missed}, error messages ${turns.errors}; client send late p99 ${driven.sendLate.p99.toFixed(1)} ms, max ${driven.sendLate.max.toFixed(0)} ms`);
process.exit(0);
