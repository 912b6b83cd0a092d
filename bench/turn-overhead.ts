/**
 * Runtime overhead of a turn: with instant fake providers, the time from the end-of-speech event
 * reaching the session to the first agent audio frame handed to the transport. Real clock, real
 * session actor, real reply machine and playout; only the providers are instant fakes.
 *
 *   npx tsx bench/turn-overhead.ts [turns=2000]
 */
import { createSession, newResumeToken } from '../src/session/session.js';
import { FakeLlm, FakeStt, FakeTts } from '../src/providers/fake/index.js';
import { stateName } from '../machines/session.js';
import { AudioRecorder } from '../src/audio/recorder.js';
import { summarize, table } from './stats.js';

const TURNS = Number(process.argv[2] ?? 2000);
const WARMUP = 200;

let firstFrameResolve: ((t: number) => void) | undefined;
// The recognizer reads each utterance from the session's recorder, as the VAD actor fills it.
const recorder = new AudioRecorder();
const session = createSession(
  {
    recorder,
    providers: {
      stt: new FakeStt({ recognize: () => 'book a table for two' }),
      llm: new FakeLlm({ respond: () => ['Sure, a table for two.'] }),
      tts: new FakeTts({ sampleRate: 48_000 }),
    },
    output: {
      sampleRate: 48_000,
      send: () => {
        const resolve = firstFrameResolve;
        firstFrameResolve = undefined;
        resolve?.(performance.now());
      },
    },
    resumeToken: newResumeToken(),
  },
  { systemPrompt: 'You are a host.' },
);
session.start();

const second = new Float32Array(16_000);
const audio = { samples: second, sampleRate: 16_000 };
const samples: number[] = [];
for (let turn = 0; turn < TURNS + WARMUP; turn++) {
  const onset = recorder.positionMs;
  recorder.write(second);
  session.send({ type: 'vad.onset', atMs: onset });
  session.send({ type: 'vad.speechStart', atMs: onset, voicedMs: 250 });
  const firstFrame = new Promise<number>((resolve) => (firstFrameResolve = resolve));
  const start = performance.now();
  // A batch recognizer: the end of turn is the VAD's end of speech (minSilenceMs).
  session.send({ type: 'vad.speechEnd', atMs: onset + 1000, durationMs: 1000, voicedMs: 1000, silenceMs: 480, audio });
  const at = await firstFrame;
  if (turn >= WARMUP) samples.push(at - start);
  session.send({ type: 'user.interrupt' });
  const state = stateName(session.getSnapshot().value);
  if (state !== 'listening') throw new Error(`turn ${turn} ended in ${state}`);
}
session.send({ type: 'session.close' });

const s = summarize(samples);
console.log(`turn overhead: end of speech → first audio frame on the transport (instant fake providers), ${s.n} turns after ${WARMUP} warm-up`);
console.log(
  table(
    ['metric', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms', 'target'],
    [['voxstate', s.p50, s.p90, s.p99, s.max, s.mean, 'p50 < 1, p99 < 5']],
  ),
);
// XState's assign copies the context with Object.assign onto {}; past 19 keys V8 makes that a slow
// dictionary-mode object (machines/session-types.ts explains). Printed so a regression is visible.
console.log(`session context: ${Object.keys(session.getSnapshot().context).length} top-level keys (19 or fewer keeps assign on V8's fast path)`);
console.log(`seed project (LLMRTC) measured here: 1940 ms median end of speech → first audio (1.6 s of it VAD hangover)`);
console.log(`(the VAD hangover is minSilenceMs and is measured by bench/vad and bench/sessions, not here)`);
