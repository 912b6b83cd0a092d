/**
 * What the inspector costs (issue 12): server CPU time per turn with 100 live WebSocket sessions
 * doing typed turns, in four configurations side by side:
 *
 *   off            inspect: false — no inspection observer at all (the hot path as before)
 *   on, unwatched  inspect: true, no inspector client connected
 *   on, one        an inspector client (this process) watches one of the 100 sessions
 *   on, all        an inspector client watches every session ("*")
 *
 * Each configuration runs a VoiceServer in a child process of its own (this file, forked) with
 * instant fake LLM and TTS (a four-word reply: 240 ms of agent audio paced in real time, so every
 * turn also sends its 20 ms frames), with its 100 sessions (and its inspector client) connected
 * all along. The servers take turns: in each window one server's sessions talk — send `user.text`,
 * wait for `reply.done`, think 300–700 ms, again — while the others sit idle. The talking server
 * measures its own CPU (process.cpuUsage: all its threads) and counts turns (onTurnEnd) over the
 * window; the figure is CPU µs per turn, the median over the windows. Each cycle gives every
 * configuration one window, in a shuffled order, and the ratio to `off` is the median of each
 * cycle's ratio, so drift and other load on the machine hit both sides of every comparison alike.
 *
 * No assertions: the target is printed beside the figures (< 5 % added CPU with a client watching).
 *
 *   npm run bench:inspect [-- --cycles 12 --window-ms 3000 --print-windows]
 *
 * --print-windows lists every window's figure (the spread shows how busy the machine was);
 * BENCH_CPU_PROF=<dir> makes each server write a V8 CPU profile there.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { summarize, table } from './stats.js';

const SESSIONS = 100;
const TARGET_ADDED_PERCENT = 5;
const REPLY = 'Okay, noted, thank you.';
const MS_PER_WORD = 60;
/** A session's pause between a reply and its next turn: random in [min, min + spread). */
const THINK_MS = { min: 300, spread: 400 };

type Mode = 'off' | 'unwatched' | 'one' | 'all';
const MODES: readonly Mode[] = ['off', 'unwatched', 'one', 'all'];
const LABELS: Readonly<Record<Mode, string>> = { off: 'off', unwatched: 'on, unwatched', one: 'on, one watched', all: 'on, all watched' };

type ToChild = { readonly type: 'mark' } | { readonly type: 'stop' };
type ToParent = { readonly type: 'ready'; readonly url: string; readonly port: number } | { readonly type: 'window'; readonly cpuUs: number; readonly turns: number };

// ------------------------------------------------------------------------------------- the child

async function child(): Promise<void> {
  const { VoiceServer } = await import('../src/server/index.js');
  const { FakeLlm, FakeStt, FakeTts } = await import('../src/providers/fake/index.js');
  const send = (message: ToParent): void => void process.send?.(message);
  let turns = 0;
  const server = new VoiceServer({
    port: 0,
    providers: { stt: new FakeStt({ recognize: () => '' }), llm: new FakeLlm({ respond: () => [REPLY] }), tts: new FakeTts({ sampleRate: 16_000, msPerWord: MS_PER_WORD }) },
    vad: false,
    inspect: process.env['BENCH_INSPECT'] === 'on',
    session: { limits: { maxSessions: 1_000, maxPerIp: 1_000, maxPerPrincipal: 1_000 } },
    hooks: { onTurnEnd: () => void turns++ },
  });
  const { url, port } = await server.start();
  let cpu = process.cpuUsage();
  let counted = 0;
  process.on('message', (message: ToChild) => {
    if (message.type === 'mark') {
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      send({ type: 'window', cpuUs: used.user + used.system, turns: turns - counted });
      counted = turns;
      return;
    }
    void server.stop().then(() => process.exit(0));
  });
  send({ type: 'ready', url, port });
}

// ------------------------------------------------------------------------------------ the parent

interface Server {
  readonly url: string;
  readonly port: number;
  window(): Promise<{ cpuUs: number; turns: number }>;
  stop(): Promise<void>;
}

async function startServer(inspect: boolean): Promise<Server> {
  const proc = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx', ...(process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`])],
    env: { ...process.env, BENCH_INSPECT_CHILD: '1', BENCH_INSPECT: inspect ? 'on' : 'off' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Extract<ToParent, { type: 'ready' }>>((resolve, reject) => {
    proc.on('message', (m: ToParent) => m.type === 'ready' && resolve(m));
    proc.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return {
    url: ready.url,
    port: ready.port,
    window: () =>
      new Promise((resolve) => {
        const onMessage = (m: ToParent): void => {
          if (m.type !== 'window') return;
          proc.off('message', onMessage);
          resolve(m);
        };
        proc.on('message', onMessage);
        proc.send({ type: 'mark' } satisfies ToChild);
      }),
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.send({ type: 'stop' } satisfies ToChild);
      }),
  };
}

/** One session: `run(active)` does typed turns while `active()` holds, and resolves once it stopped between two. */
async function talker(url: string): Promise<{ id: string; run: (active: () => boolean) => Promise<void>; close: () => void }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let onReply: (() => void) | undefined;
  let onReady: ((id: string) => void) | undefined;
  ws.on('message', (data, binary) => {
    if (binary) return;
    const text = String(data);
    if (text.startsWith('{"type":"reply.done"')) onReply?.();
    else if (text.startsWith('{"type":"session.ready"')) onReady?.((JSON.parse(text) as { sessionId: string }).sessionId);
  });
  const id = await new Promise<string>((resolve) => {
    onReady = resolve;
    ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000 } }));
  });
  const run = async (active: () => boolean): Promise<void> => {
    // Spread the first turns over half a second so the sessions do not move in lockstep.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 500));
    while (active()) {
      const replied = new Promise<void>((resolve) => (onReply = resolve));
      ws.send(JSON.stringify({ type: 'user.text', text: 'hello there' }));
      await replied;
      await new Promise((resolve) => setTimeout(resolve, THINK_MS.min + Math.random() * THINK_MS.spread));
    }
  };
  return { id, run, close: () => ws.close() };
}

/** An inspector client watching `target`; it counts what it receives. */
async function watcher(port: number, target: string): Promise<{ bytes: () => number; close: () => void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/inspect/ws`, { perMessageDeflate: false });
  let bytes = 0;
  ws.on('message', (data: Buffer) => void (bytes += data.length));
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'watch', sessionId: target }));
  return { bytes: () => bytes, close: () => ws.close() };
}

interface Setup {
  readonly mode: Mode;
  readonly server: Server;
  readonly talkers: Awaited<ReturnType<typeof talker>>[];
  readonly watching: Awaited<ReturnType<typeof watcher>> | undefined;
  readonly usPerTurn: number[];
  readonly turnsPerS: number[];
  readonly inspectorKBps: number[];
}

async function setUp(mode: Mode): Promise<Setup> {
  const server = await startServer(mode !== 'off');
  const talkers = await Promise.all(Array.from({ length: SESSIONS }, () => talker(server.url)));
  const watching = mode === 'one' ? await watcher(server.port, talkers[0]?.id ?? '') : mode === 'all' ? await watcher(server.port, '*') : undefined;
  return { mode, server, talkers, watching, usPerTurn: [], turnsPerS: [], inspectorKBps: [] };
}

/** One window of `setup`'s sessions talking (the other servers idle); `measure` false for a warm-up. */
async function window(setup: Setup, windowMs: number, measure: boolean): Promise<void> {
  let active = true;
  const runs = setup.talkers.map((t) => t.run(() => active));
  // The first turns start over half a second: count from then on.
  await new Promise((resolve) => setTimeout(resolve, 600));
  await setup.server.window();
  const bytes = setup.watching?.bytes() ?? 0;
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const { cpuUs, turns } = await setup.server.window();
  active = false;
  await Promise.all(runs);
  if (!measure) return;
  setup.usPerTurn.push(cpuUs / Math.max(1, turns));
  setup.turnsPerS.push(turns / (windowMs / 1000));
  setup.inspectorKBps.push(((setup.watching?.bytes() ?? 0) - bytes) / 1024 / (windowMs / 1000));
}

async function parent(): Promise<void> {
  const { values } = parseArgs({ options: { cycles: { type: 'string' }, 'window-ms': { type: 'string' }, 'print-windows': { type: 'boolean' } } });
  const cycles = Number(values.cycles ?? 12);
  const windowMs = Number(values['window-ms'] ?? 3000);
  console.log(`inspector overhead: ${SESSIONS} WebSocket sessions per server doing typed turns ("${REPLY}", ${MS_PER_WORD} ms of audio per word)`);
  console.log(`four servers (one per configuration), one talking at a time: ${cycles} cycles of a ${windowMs} ms window each\n`);
  const setups: Setup[] = [];
  for (const mode of MODES) setups.push(await setUp(mode));
  // Warm-up: every server's JIT and first turns.
  for (const setup of setups) await window(setup, windowMs, false);
  for (let cycle = 1; cycle <= cycles; cycle++) {
    // A different order each cycle: drift and neighbours hit every configuration alike.
    const order = [...setups].sort(() => Math.random() - 0.5);
    for (const setup of order) await window(setup, windowMs, true);
    process.stdout.write(`cycle ${cycle}/${cycles}\n`);
  }
  for (const setup of setups) {
    for (const t of setup.talkers) t.close();
    setup.watching?.close();
    await setup.server.stop();
  }
  if (values['print-windows'] === true) for (const setup of setups) console.log(`${LABELS[setup.mode]}: ${setup.usPerTurn.map(Math.round).join(' ')} µs/turn, by cycle`);
  const offWindows = setups[0]?.usPerTurn ?? [];
  const rows = setups.map((setup) => {
    const us = summarize(setup.usPerTurn);
    // Each cycle's window against the same cycle's `off` window: what the machine was doing then hit both.
    const ratio = summarize(setup.usPerTurn.map((value, cycle) => value / (offWindows[cycle] ?? Number.NaN))).p50;
    const added = (ratio - 1) * 100;
    return [LABELS[setup.mode], us.n, Math.round(summarize(setup.turnsPerS).p50), Math.round(us.p50), Math.round(us.p90), ratio.toFixed(3), `${added >= 0 ? '+' : ''}${added.toFixed(1)} %`, setup.watching === undefined ? '-' : Math.round(summarize(setup.inspectorKBps).p50)];
  });
  console.log(`\n${table(['inspection', 'windows', 'turns/s', 'CPU µs/turn p50', 'p90', 'vs off (paired p50)', 'added', 'inspector KB/s'], rows)}`);
  console.log(`\ntarget: < ${TARGET_ADDED_PERCENT} % added CPU per turn with an inspector client watching (one session, and all of them)`);
}

if (process.env['BENCH_INSPECT_CHILD'] === '1') await child();
else await parent();
