/**
 * Latency and pacing as a client hears them, against a VoiceServer in its own process (real Silero
 * VAD, fake providers), over loopback WebSocket audio streamed in real time. Every figure is client
 * wall time (performance.now()), end to end:
 *
 *  - "sent": the instant the 20 ms frame carrying a sample was handed to ws.send() by a microphone
 *    that streams frames paced against its start time (silence between clips);
 *  - speech onset / end: the first / last sample of the first / last 5 ms block of the clip whose RMS
 *    is ≥ −34 dBFS (test/scenario/harness.ts speechEdges), as sent;
 *  - a pause in the agent's audio: the first gap of more than 100 ms between received agent frames.
 *
 *  1. end to end: speech end (sent) → the first agent audio frame received (the VAD's minSilenceMs is
 *     part of it by design; the rest is the runtime);
 *  2. barge-in with Flite speech during a 7 s reply (bench/latency-server.ts):
 *     a. pause: speech onset (sent) → the last agent frame received before the pause;
 *     b. cut, for a real interruption: speech onset (sent) → `reply.done interrupted:true` received,
 *        and → the last agent frame of the cut reply received; and the audio that completed the
 *        minInterruptionMs of voiced speech (sent) → `reply.done`;
 *     c. backchannel: speech end (sent) → the first resumed agent frame received;
 *     d. counts: backchannels kept (reply whole, not interrupted, no turn), interruptions cut;
 *  3. playout: an 8.8 s reply — how long it takes to leave the server (its egress, timed in the server
 *     process at ws.send) and to arrive, alone and as a burst: 100 replies started in the same
 *     instant (user.text to every session at once). Also, per session, the most any frame left after
 *     its slot (first frame + k × 20 ms): how deep a client's jitter buffer must be not to run dry.
 *
 *   npm run bench:latency                      all three
 *   npx tsx bench/latency.ts playout           only the playout figures (or e2e, barge-in; any of them)
 *   BENCH_CPU_PROF=/tmp/prof npx tsx bench/latency.ts playout    + a CPU profile of each server process
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { readWav } from '../src/audio/wav.js';
import { DEFAULT_SESSION_SETTINGS } from '../machines/session.js';
import { DEFAULT_VAD_CONFIG } from '../src/vad/config.js';
import type { SharedVad } from '../src/vad/shared-vad.js';
import { closeSpeech, speech } from '../test/helpers/speech.js';
import {
  BACKCHANNELS,
  delay,
  FRAME,
  FRAMES_PER_WORD,
  INTERRUPTION,
  CONTINUOUS_INTERRUPTION,
  LONG_REPLY,
  offlineVad,
  RATE,
  runTrial,
  ScenarioClient,
  speechEdges,
  type Trial,
  type TrialKind,
  vadOfClip,
  vadTimes,
  words,
} from '../test/scenario/harness.js';
import { summarize, table } from './stats.js';

async function startServer(script: string, env: Record<string, string> = {}): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
    // BENCH_CPU_PROF=<dir>: write a V8 CPU profile of the server process there (node --cpu-prof).
    execArgv: ['--import', 'tsx', ...(process.env['BENCH_CPU_PROF'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROF']}`])],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const info = await new Promise<{ url: string; port: number }>((resolve) => child.once('message', (m) => resolve(m as { url: string; port: number })));
  return { url: info.url, port: info.port, stop: () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.send('stop'))) };
}

// ------------------------------------------------------------------------------------- 1. end to end

interface EndToEnd {
  total: number[];
  /** Speech end (sent) → the server's vad.speech_end message received. */
  vad: number[];
  /** vad.speech_end received → the first agent audio frame received. */
  runtime: number[];
  speechEndMs: number;
}

async function endToEnd(): Promise<EndToEnd> {
  const server = await startServer('./sessions-server.ts', { BENCH_REPLY: 'Fine, thanks.', BENCH_MS_PER_WORD: '150' });
  const wav = readWav(new Uint8Array(readFileSync(fileURLToPath(new URL('../test/fixtures/padded-hello.16k.wav', import.meta.url)))));
  const hello = wav.samples;
  const { last } = speechEdges(hello);
  const results: EndToEnd = { total: [], vad: [], runtime: [], speechEndMs: (last + 1) / (RATE / 1000) };
  const clients = await Promise.all(Array.from({ length: 8 }, () => ScenarioClient.connect(server.url)));
  await Promise.all(
    clients.map(async (client, i) => {
      await delay(i * 130); // stagger
      for (let round = 0; round < 3; round++) {
        const replyId = String(round + 1);
        const playback = client.play(hello);
        await playback.done;
        const speechEndAt = playback.sentAt[Math.floor(last / FRAME)] as number;
        await client.next('reply.done', (m) => m['replyId'] === replyId, 20_000);
        const first = client.framesOf(replyId)[0];
        const vadEnd = client.messages.find((x) => x.m.type === 'vad.speech_end' && x.t >= (playback.sentAt[0] as number))?.t;
        if (first !== undefined && vadEnd !== undefined) {
          results.total.push(first - speechEndAt);
          results.vad.push(vadEnd - speechEndAt);
          results.runtime.push(first - vadEnd);
        }
        // Let the reply finish before the next utterance.
        await delay(300);
      }
    }),
  );
  await Promise.all(clients.map((c) => c.close()));
  await server.stop();
  return results;
}

// ------------------------------------------------------------------------------------- 2. barge-in

interface BargeIn {
  /** (a) speech onset (sent) → the last agent frame before the pause. */
  pause: number[];
  /** Speech onset (sent) → the onset VAD window complete (sent): audio the VAD needs first. */
  pauseVad: number[];
  /** Onset window complete (sent) → the frame after the last one was due (last + 20 ms): an upper bound of the runtime's share. */
  pauseRuntime: number[];
  pauseByClip: Map<string, number[]>;
  cutDone: number[];
  cutLastFrame: number[];
  /** Speech onset (sent) → the audio completing minInterruptionMs of voiced windows (sent). */
  cutVoicedNeed: number[];
  /** That audio (sent) → reply.done received. */
  cutRuntime: number[];
  /** Voiced ms the server counted when it cut (interruption.confirmed.voicedMs), if on the wire. */
  cutVoiced: number[];
  resume: Map<string, number[]>;
  /** End of the last voiced VAD window (sent) → the first resumed frame: pauseMs + falseInterruptionTimeoutMs + the runtime. */
  resumeRuntime: number[];
  voiced: Map<string, number[]>;
  kept: Map<string, { kept: number; n: number }>;
  cut: { cut: number; n: number };
  cutByClip: Map<string, { cut: number; n: number; done: number[] }>;
  failures: string[];
}

const MARK_MS = DEFAULT_SESSION_SETTINGS.minInterruptionMs;
const INTERRUPTIONS = [INTERRUPTION, CONTINUOUS_INTERRUPTION];

async function bargeIn(vad: SharedVad): Promise<BargeIn> {
  const server = await startServer('./latency-server.ts');
  const clips = new Map<string, Float32Array>();
  for (const text of [...BACKCHANNELS, ...INTERRUPTIONS]) clips.set(text, await speech(text));
  const all = [...BACKCHANNELS, ...INTERRUPTIONS];
  const out: BargeIn = {
    pause: [],
    pauseVad: [],
    pauseRuntime: [],
    pauseByClip: new Map(all.map((t) => [t, []])),
    cutDone: [],
    cutLastFrame: [],
    cutVoicedNeed: [],
    cutRuntime: [],
    cutVoiced: [],
    resume: new Map(BACKCHANNELS.map((t) => [t, []])),
    resumeRuntime: [],
    voiced: new Map(all.map((t) => [t, []])),
    kept: new Map(BACKCHANNELS.map((t) => [t, { kept: 0, n: 0 }])),
    cut: { cut: 0, n: 0 },
    cutByClip: new Map(INTERRUPTIONS.map((t) => [t, { cut: 0, n: 0, done: [] }])),
    failures: [],
  };
  const replyFrames = words(LONG_REPLY).length * FRAMES_PER_WORD;

  const judge = async (t: Trial, text: string): Promise<void> => {
    // The session's VAD, replayed offline on the same stream (exactly what the server's saw).
    const vt = vadTimes(t, await vadOfClip(vad, t.clip, t.playback.streamSample));
    const wireVoiced = t.client.of('vad.speech_end').map((x) => x.m['voicedMs']);
    const onWire = wireVoiced.length > 0 && wireVoiced.every((v) => typeof v === 'number');
    out.voiced.get(text)?.push(onWire ? (wireVoiced as number[]).reduce((a, b) => a + b, 0) : vt.voicedMs);
    if (t.pause !== undefined) {
      out.pause.push(t.pause.lastFrameAt - t.onsetAt);
      out.pauseByClip.get(text)?.push(t.pause.lastFrameAt - t.onsetAt);
      if (vt.onsetWindowAt !== undefined) {
        out.pauseVad.push(vt.onsetWindowAt - t.onsetAt);
        out.pauseRuntime.push(t.pause.lastFrameAt + 20 - vt.onsetWindowAt);
      }
    } else out.failures.push(`${t.name}: no pause in the agent audio after the onset`);
    if (t.kind === 'backchannel') {
      const record = out.kept.get(text)!;
      record.n++;
      const kept =
        t.done1.m['interrupted'] === false &&
        t.done1.m['text'] === LONG_REPLY &&
        t.client.of('transcript.final').length === 0 &&
        !t.client.messages.some((x) => x.m['replyId'] === '2') &&
        t.frames1.length === replyFrames;
      if (kept) record.kept++;
      else out.failures.push(`${t.name}: not kept (${JSON.stringify(t.done1.m)}, ${t.frames1.length}/${replyFrames} frames)`);
      const resumed = t.pause?.resumedAt;
      if (resumed !== undefined) {
        out.resume.get(text)?.push(resumed - t.speechEndAt);
        if (vt.lastVoicedAt !== undefined) out.resumeRuntime.push(resumed - vt.lastVoicedAt);
      }
    } else {
      out.cut.n++;
      const clip = out.cutByClip.get(text);
      if (clip !== undefined) clip.n++;
      const cut = t.done1.m['interrupted'] === true && t.final?.m['text'] === text && t.done2 !== undefined;
      if (cut) out.cut.cut++;
      if (cut && clip !== undefined) clip.cut++;
      if (t.done1.m['interrupted'] === true) clip?.done.push(t.done1.t - t.onsetAt);
      else out.failures.push(`${t.name}: not cut (${JSON.stringify(t.done1.m)})`);
      if (t.done1.m['interrupted'] === true) {
        out.cutDone.push(t.done1.t - t.onsetAt);
        const last = t.frames1.at(-1);
        if (last !== undefined) out.cutLastFrame.push(last - t.onsetAt);
        if (vt.markAt !== undefined) {
          out.cutVoicedNeed.push(vt.markAt - t.onsetAt);
          out.cutRuntime.push(t.done1.t - vt.markAt);
        }
        const confirmed = t.client.of('interruption.confirmed')[0]?.m['voicedMs'];
        if (typeof confirmed === 'number') out.cutVoiced.push(confirmed);
      }
    }
  };

  // Waves of 10 sessions at once, starts spread over 0.5 s: backchannels (each clip twice), then
  // interruptions; twice over. 40 pause trials, 20 backchannels, 20 interruptions.
  const wave = async (kind: TrialKind): Promise<void> => {
    const texts = kind === 'backchannel' ? [...BACKCHANNELS, ...BACKCHANNELS] : Array.from({ length: 10 }, (_, i) => INTERRUPTIONS[i % INTERRUPTIONS.length] as string);
    await Promise.all(
      texts.map(async (text, i) => {
        await delay(Math.random() * 500);
        try {
          const t = await runTrial(server.url, { name: `${kind} ${i} ${text}`, kind, clip: clips.get(text)!, leadFrames: 40 + Math.floor(Math.random() * 30) });
          await judge(t, text);
        } catch (error) {
          out.failures.push(`${kind} ${i}: ${error instanceof Error ? error.message : String(error)}`);
          if (kind === 'backchannel') out.kept.get(text)!.n++;
          else out.cut.n++;
        }
      }),
    );
  };
  for (let round = 0; round < 2; round++) {
    await wave('backchannel');
    await wave('interruption');
  }
  await server.stop();
  return out;
}

// ------------------------------------------------------------------------------------- 3. playout

/** How many replies start in the same instant in the burst run. */
const BURST = 100;

interface PlayoutRun {
  /** Per session, at the server's egress: time its frames took to leave minus the audio they carry. */
  egress: number[];
  /** Per session, at the server's egress: the most any frame k left after first + k × 20 ms. */
  frameLate: number[];
  /** Per session, at the client: the same as `egress`, as received. */
  arrival: number[];
  /** The last session's first frame − the first session's first frame, at the server. */
  startSpread: number[];
  loop: { p99: number; max: number; cpuPercent: number };
}

async function playout(sessionsCount: number): Promise<PlayoutRun> {
  // 44 words × 200 ms = 8.8 s, the seed project's measured reply.
  const reply = `${Array.from({ length: 44 }, (_, i) => `w${i}`).join(' ')}.`;
  const server = await startServer('./sessions-server.ts', { BENCH_REPLY: reply, BENCH_MS_PER_WORD: '200' });
  const sessions = await Promise.all(
    Array.from({ length: sessionsCount }, async () => {
      const ws = new WebSocket(server.url, { perMessageDeflate: false });
      await new Promise((resolve) => ws.once('open', resolve));
      const frames: number[] = [];
      let ready = false;
      ws.on('message', (data, binary) => {
        if (binary) frames.push(performance.now());
        else if ((JSON.parse(String(data)) as { type: string }).type === 'session.ready') ready = true;
      });
      ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: RATE } }));
      while (!ready) await delay(5);
      return { ws, frames };
    }),
  );
  await fetch(`http://127.0.0.1:${server.port}/bench/reset`, { method: 'POST' });
  for (const s of sessions) s.ws.send(JSON.stringify({ type: 'user.text', text: 'talk' }));
  await delay(11_000);
  const stats = (await (await fetch(`http://127.0.0.1:${server.port}/bench/stats`)).json()) as { cpuPercent: number; loopDelayMs: { p99: number; max: number } };
  const egress = (await (await fetch(`http://127.0.0.1:${server.port}/bench/egress`)).json()) as { first: number; durationError: number; maxLate: number }[];
  const arrival = sessions.map((s) => {
    const first = s.frames[0] ?? 0;
    const last = s.frames.at(-1) ?? 0;
    return last + 20 - first - 8800; // the last frame carries 20 ms of audio
  });
  for (const s of sessions) s.ws.close();
  await server.stop();
  const firsts = egress.map((e) => e.first);
  return {
    egress: egress.map((e) => e.durationError),
    frameLate: egress.map((e) => e.maxLate),
    arrival,
    startSpread: [Math.max(...firsts) - Math.min(...firsts)],
    loop: { ...stats.loopDelayMs, cpuPercent: stats.cpuPercent },
  };
}

// ------------------------------------------------------------------------------------- run and print

const SECTIONS = ['e2e', 'barge-in', 'playout'] as const;
const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !(SECTIONS as readonly string[]).includes(a));
if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
const runs = (section: (typeof SECTIONS)[number]): boolean => asked.length === 0 || asked.includes(section);
const minSilence = DEFAULT_VAD_CONFIG.minSilenceMs;
const pauseMs = DEFAULT_VAD_CONFIG.pauseMs;
const falseMs = DEFAULT_SESSION_SETTINGS.falseInterruptionTimeoutMs;
const row = (label: string, values: readonly number[], target: string, note = ''): (string | number)[] => {
  const s = summarize(values);
  return [label, s.n, s.p50, s.p99, s.max, target, note];
};

console.log('bench/latency — VoiceServer in its own process, real Silero VAD, fake providers, loopback WebSocket audio in real time');
console.log('all figures: client wall time unless marked "server"; "sent" = the frame carrying the sample was handed to ws.send(); speech = 5 ms RMS ≥ −34 dBFS');

if (runs('e2e')) {
  const ends = await endToEnd();
  const e2e = summarize(ends.total);
  const vadPart = summarize(ends.vad);
  const runtimePart = summarize(ends.runtime);
  console.log('\n1. end to end — 8 sessions × 3 turns\n');
  console.log(
    table(
      ['measure', 'n', 'p50 ms', 'p99 ms', 'max ms', 'target', 'seed (LLMRTC) here'],
      [
        [`speech end (sent, ${ends.speechEndMs.toFixed(0)} ms into padded-hello) → first agent frame received`, e2e.n, e2e.p50, e2e.p99, e2e.max, `≤ minSilenceMs + 40 = ${minSilence + 40}`, '1940 (p50)'],
        ['  VAD: speech end (sent) → vad.speech_end received', vadPart.n, vadPart.p50, vadPart.p99, vadPart.max, `minSilenceMs = ${minSilence} (+ ≤ 32 window)`, '≈ 1600'],
        ['  runtime: vad.speech_end received → first agent frame received', runtimePart.n, runtimePart.p50, runtimePart.p99, runtimePart.max, '≤ 40', '≈ 340'],
      ],
    ),
  );
}

if (runs('barge-in')) {
  const vad = offlineVad();
  const barge = await bargeIn(vad);
  await vad.close();
  await closeSpeech();
  console.log(`\n2. barge-in — Flite (slt) speech into a 7 s reply, 10 sessions at a time; minInterruptionMs ${MARK_MS}, pauseMs ${pauseMs}, falseInterruptionTimeoutMs ${falseMs}\n`);
  const resumeAll = [...barge.resume.values()].flat();
  console.log(
    table(
      ['measure', 'n', 'p50 ms', 'p99 ms', 'max ms', 'target', 'note'],
      [
        row('(a) pause: speech onset (sent) → last agent frame before the pause', barge.pause, '≤ 100', 'all 40 trials'),
        ...[...barge.pauseByClip].map(([text, values]) => row(`      ${JSON.stringify(text)}`, values, '', '')),
        row('    VAD: speech onset (sent) → onset window (p ≥ 0.5) complete (sent)', barge.pauseVad, '', 'audio Silero needs'),
        row('    runtime: onset window complete (sent) → last frame + 20 ms', barge.pauseRuntime, '≤ 40', 'upper bound'),
        row('(b) cut: speech onset (sent) → reply.done interrupted:true', barge.cutDone, `minInterruptionMs + 100 = ${MARK_MS + 100}`, 'both clips'),
        ...[...barge.cutByClip].map(([text, clip]) => row(`      ${JSON.stringify(text)}`, clip.done, '', '')),
        row('    speech onset (sent) → last agent frame of the cut reply', barge.cutLastFrame, '≤ 100', 'paused at the onset'),
        row(`    VAD: speech onset (sent) → ${MARK_MS} ms of voiced windows complete (sent)`, barge.cutVoicedNeed, `≥ ${MARK_MS}`, 'voiced ≠ wall time'),
        row(`    runtime: ${MARK_MS} ms voiced complete (sent) → reply.done received`, barge.cutRuntime, '≤ 100', ''),
        row('(c) backchannel: speech end (sent) → first resumed agent frame', resumeAll, `pauseMs + timeout = ${pauseMs + falseMs} + VAD`, 'all five clips'),
        ...[...barge.resume].map(([text, values]) => row(`      ${JSON.stringify(text)}`, values, '', '')),
        row('    last voiced window complete (sent) → first resumed frame', barge.resumeRuntime, `${pauseMs + falseMs} + ≤ 40`, 'timers + runtime'),
      ],
    ),
  );
  const voicedOf = (text: string): string => {
    const values = barge.voiced.get(text) ?? [];
    return `${Math.min(...values)}–${Math.max(...values)}`;
  };
  console.log('\n(d) counts');
  console.log(
    table(
      ['clip', 'voiced ms (server VAD)', 'outcome'],
      [
        ...[...barge.kept].map(([text, k]) => [JSON.stringify(text), voicedOf(text), `kept ${k.kept}/${k.n}`]),
        ...[...barge.cutByClip].map(([text, clip]) => [JSON.stringify(text), voicedOf(text), `cut ${clip.cut}/${clip.n}`]),
      ],
    ),
  );
  if (barge.cutVoiced.length > 0) console.log(`\nvoiced ms when the interruption was confirmed (interruption.confirmed.voicedMs): ${[...new Set(barge.cutVoiced)].join(', ')}`);
  const totals = [...barge.kept.values()].reduce((a, k) => ({ kept: a.kept + k.kept, n: a.n + k.n }), { kept: 0, n: 0 });
  console.log(`backchannels kept ${totals.kept}/${totals.n}; real interruptions cut ${barge.cut.cut}/${barge.cut.n}`);
  if (barge.failures.length > 0) console.log(`\nfailures:\n  ${barge.failures.join('\n  ')}`);
}

if (runs('playout')) {
  const one = await playout(1);
  const burst = await playout(BURST);
  console.log(`\n3. playout — an 8.8 s reply (44 words × 200 ms, fake TTS at 20× real time), alone and with ${BURST} replies started in the same instant (user.text to every session at once)\n`);
  console.log(
    table(
      ['measure', 'n', 'p50 ms', 'p99 ms', 'max ms', 'target', 'seed (LLMRTC) here'],
      [
        row('1 session: time its frames take to leave the server − 8.8 s (server)', one.egress, '± 20', '+400'),
        row('  … to arrive at the client − 8.8 s', one.arrival, '', ''),
        row(`${BURST} at once: time to leave the server − 8.8 s (server)`, burst.egress, '± 20', '+41100 (25 sessions)'),
        row('  … most any frame left after its due time (first frame + k × 20 ms) (server)', burst.frameLate, '', 'per session'),
        row('  … to arrive at the client − 8.8 s (client process, same 2 cores)', burst.arrival, '', ''),
        row('  first frames: spread of the start (server)', burst.startSpread, '', 'once'),
      ],
    ),
  );
  console.log(`\nserver event-loop delay during the ${BURST}-session playout: p99 ${burst.loop.p99.toFixed(1)} ms, max ${burst.loop.max.toFixed(1)} ms; server CPU ${burst.loop.cpuPercent.toFixed(0)} %`);
}
process.exit(0);
