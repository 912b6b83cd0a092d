/**
 * End of turn as the user hears it (issue 10): how soon the agent answers once the user stops, and
 * how often it answers before the user has finished. A VoiceServer in its own process
 * (bench/turns-server.ts: real Silero VAD, instant fake LLM and TTS) is spoken to by a loopback ws
 * client streaming Flite speech in real time (test/scenario/harness.ts ScenarioClient).
 *
 * Speech recognition is GoogleStt against a loopback Speech server whose recognizer is scripted
 * (test/providers/servers/google-scripted.ts: it hears the voice in the audio it is sent, interim
 * results while the voice lasts, the final a fixed amount of audio after it stops), in three
 * configurations side by side:
 *
 *   fixed       today's behaviour before issue 10: GoogleStt's batch path only, so the turn ends at
 *               the VAD's end of speech (minSilenceMs 480 ms of silence) and the utterance is then
 *               transcribed (the honest equivalent of "end after minSilenceMs": it is that code path)
 *   adaptive    streaming STT, the lexical turn detector decides the end of turn, preemptive: false
 *   preemptive  the same with preemptive (speculative) replies, the default
 *
 * on (a) complete sentences and questions and (b) sentences with a 600–800 ms thinking pause after a
 * word that leaves them unfinished ("…a table for" + pause + "four people on Friday."). Then the
 * offline path: PocketsphinxStt on the 16 kHz fixtures of test/fixtures and one paused sentence.
 *
 * Figures, per turn:
 *  - edge → first audio (client): the audio edge is the clip's last sample above 0.5% of full scale,
 *    at the instant the 20 ms frame carrying it was handed to ws.send(); the first agent audio is
 *    the first binary frame received of the first reply whose reply.audio_start arrived after it;
 *  - userStoppedToFirstAudioMs, endpointingMs: what the server reports for that turn (its onTurnEnd
 *    hook, the fields of metrics.turn; the server's audio edge is the end of Silero's last voiced
 *    window, which comes a little before the 0.5% edge);
 *  - premature replies: reply.audio_start received after the clip started and before its audio edge
 *    was sent (for (b): a reply to the first half);
 *  - one turn: exactly one transcript.final for the clip;
 *  - metrics.turn on the wire: how many of those turns' metrics.turn messages reached the client.
 *
 * No assertions: targets are printed beside the figures.
 *
 *   npm run bench:turns
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { readWav } from '../src/audio/wav.js';
import type { TurnMetrics } from '../src/server/hooks.js';
import { DEFAULT_SESSION_SETTINGS } from '../machines/session.js';
import { DEFAULT_VAD_CONFIG } from '../src/vad/config.js';
import { closeSpeech, concat, silence, speech } from '../test/helpers/speech.js';
import { hearOffline } from '../test/providers/servers/google-scripted.js';
import { delay, FRAME, RATE, ScenarioClient, type Timed } from '../test/scenario/harness.js';
import { summarize, table } from './stats.js';
import type { ToChild, ToParent, TurnsConfig } from './turns-server.js';

const INTERIM_EVERY_MS = 100;
const FINAL_AFTER_EDGE_MS = 150;
/** Silence the microphone sends after each clip; then up to ANSWER_WAIT_MS more for the answer. */
const TAIL_MS = 1500;
const ANSWER_WAIT_MS = 8000;

const TARGET_COMPLETE_P50_MS = 300;
const TARGET_OFFLINE_P50_MS = 700;

const COMPLETE = [
  'I would like to book a table for two people.',
  'What time does the restaurant open tomorrow?',
  'Can you move my appointment to Thursday afternoon?',
  'Please send the invoice to my office address.',
  'How much does the train to Boston cost?',
  'I need a taxi to the airport at six.',
  'Is the museum open on Sunday mornings?',
  'Cancel my reservation for tonight please.',
  'Where is the nearest pharmacy from here?',
  'My flight number is four five two.',
  'Could you tell me the weather in Paris?',
  'Add milk and bread to my shopping list.',
];

/** Each first half ends on a word that leaves the sentence unfinished; pauses 600–800 ms. */
const PAUSED: readonly (readonly [string, string, number])[] = [
  ['I would like to book a table for', 'four people on Friday.', 700],
  ['Can you remind me to call my sister at', 'seven tonight?', 600],
  ['Please send the report to', 'the whole team.', 800],
  ['I want to change my flight to', 'next Monday morning.', 650],
  ['What is the best way to get to the', 'train station from here?', 750],
  ['Book me a room with a view of the', 'ocean for three nights.', 700],
  ['I am looking for a restaurant with', 'vegetarian food.', 600],
  ['Could you move the meeting with', 'the design team to noon?', 800],
  ['Add eggs and', 'orange juice to my list.', 650],
  ['My order number is five and', 'the name is Smith.', 750],
  ['Tell me how long it takes to drive from', 'here to the coast.', 700],
];

const OFFLINE_PAUSED = ['I would like to book a table for', 'four people on Friday', 700] as const;
/** The 16 kHz speech fixtures (noise.16k.wav has none); booking-noisy's speech edge is booking's (test/fixtures/README.md). */
const FIXTURES = ['booking', 'booking-noisy', 'digits', 'hello', 'padded-hello', 'stop', 'two-phrases-short-pause', 'weather'];

// ------------------------------------------------------------------------------------- clips

interface Clip {
  readonly name: string;
  readonly samples: Float32Array;
  /** What the scripted recognizer hears, one phrase per voiced segment (none offline). */
  readonly phrases: readonly string[];
  /** The audio edge: the last sample above 0.5% of full scale. */
  readonly edge: number;
}

function lastAbove(samples: Float32Array, level = 0.005): number {
  for (let i = samples.length - 1; i >= 0; i--) if (Math.abs(samples[i] as number) > level) return i;
  return -1;
}

function clip(name: string, samples: Float32Array, phrases: readonly string[], edge = lastAbove(samples)): Clip {
  return { name, samples, phrases, edge };
}

function fixture(name: string): Float32Array {
  return readWav(new Uint8Array(readFileSync(fileURLToPath(new URL(`../test/fixtures/${name}.16k.wav`, import.meta.url))))).samples;
}

/** Warns when the scripted recognizer would hear a clip as another number of segments than it has phrases. */
async function checkSegments(clips: readonly Clip[]): Promise<string[]> {
  const warnings: string[] = [];
  for (const c of clips) {
    const finals = await hearOffline(c.samples, { interimEveryMs: INTERIM_EVERY_MS, finalAfterEdgeMs: FINAL_AFTER_EDGE_MS });
    if (finals.length !== c.phrases.length) warnings.push(`${JSON.stringify(c.name)}: ${finals.length} voiced segments for ${c.phrases.length} phrases`);
  }
  return warnings;
}

// ------------------------------------------------------------------------------------- server

class TurnsServer {
  readonly url: string;
  readonly stt: string;
  readonly #child: ChildProcess;
  readonly #metrics: TurnMetrics[] = [];
  #scripted: (() => void) | undefined;

  private constructor(child: ChildProcess, ready: Extract<ToParent, { type: 'ready' }>) {
    this.#child = child;
    this.url = ready.url;
    this.stt = ready.stt;
    child.on('message', (message: ToParent) => {
      if (message.type === 'turn') this.#metrics.push(message.metrics as TurnMetrics);
      if (message.type === 'scripted') this.#scripted?.();
    });
  }

  static async start(config: TurnsConfig): Promise<TurnsServer> {
    const child = fork(fileURLToPath(new URL('./turns-server.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_TURNS_CONFIG: config, BENCH_INTERIM_EVERY_MS: String(INTERIM_EVERY_MS), BENCH_FINAL_AFTER_EDGE_MS: String(FINAL_AFTER_EDGE_MS) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<Extract<ToParent, { type: 'ready' }>>((resolve, reject) => {
      child.on('message', (m: ToParent) => m.type === 'ready' && resolve(m));
      child.once('exit', (code) => reject(new Error(`bench/turns-server.ts (${config}) exited with ${code}`)));
    });
    return new TurnsServer(child, ready);
  }

  #send(message: ToChild): void {
    this.#child.send(message);
  }

  /** What the next clip says (the scripted recognizer's phrase queue). */
  script(phrases: readonly string[]): Promise<void> {
    return new Promise((resolve) => {
      this.#scripted = resolve;
      this.#send({ type: 'script', phrases });
    });
  }

  /** The server's metrics of a turn, once its onTurnEnd hook has reported them. */
  async metrics(sessionId: string, turnId: string, timeoutMs = 1000): Promise<TurnMetrics | undefined> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const found = this.#metrics.find((m) => m.sessionId === sessionId && m.turnId === turnId);
      if (found !== undefined || performance.now() > until) return found;
      await delay(10);
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#send({ type: 'stop' });
    });
  }
}

// ------------------------------------------------------------------------------------- trials

interface Outcome {
  readonly clip: Clip;
  /** Edge (sent) → first frame of the answer (received); undefined: no answer. */
  readonly edgeToFirstAudio: number | undefined;
  readonly metrics: TurnMetrics | undefined;
  readonly wireMetrics: boolean;
  readonly premature: number;
  readonly finals: readonly string[];
}

async function waitFor<T>(find: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined || performance.now() > until) return found;
    await delay(10);
  }
}

/** One clip spoken into a fresh session. */
async function trial(server: TurnsServer, c: Clip): Promise<Outcome> {
  const client = await ScenarioClient.connect(server.url);
  try {
    const sessionId = String(client.of('session.ready')[0]?.m['sessionId']);
    await server.script(c.phrases);
    await delay(300);
    const playback = client.play(concat([c.samples, silence(TAIL_MS)]));
    await playback.done;
    const startAt = playback.sentAt[0] as number;
    const edgeAt = playback.sentAt[Math.floor(c.edge / FRAME)] as number;
    const audioStarts = (): Timed[] => client.of('reply.audio_start');
    const answer = await waitFor(() => audioStarts().find((x) => x.t >= edgeAt), ANSWER_WAIT_MS);
    const replyId = answer === undefined ? undefined : String(answer.m['replyId']);
    if (replyId !== undefined) await client.next('reply.done', (m) => m['replyId'] === replyId, 10_000);
    const first = replyId === undefined ? undefined : client.framesOf(replyId)[0];
    const metrics = replyId === undefined ? undefined : await server.metrics(sessionId, replyId);
    return {
      clip: c,
      edgeToFirstAudio: first === undefined ? undefined : first - edgeAt,
      metrics,
      wireMetrics: client.of('metrics.turn').some((x) => x.m['turnId'] === replyId),
      premature: audioStarts().filter((x) => x.t >= startAt && x.t < edgeAt).length,
      finals: client.of('transcript.final').map((x) => String(x.m['text'])),
    };
  } finally {
    await client.close();
  }
}

async function run(config: TurnsConfig, clips: readonly Clip[]): Promise<{ stt: string; outcomes: Outcome[] }> {
  const server = await TurnsServer.start(config);
  const outcomes: Outcome[] = [];
  try {
    for (const c of clips) outcomes.push(await trial(server, c));
  } finally {
    await server.stop();
  }
  return { stt: server.stt, outcomes };
}

// ------------------------------------------------------------------------------------- report

const defined = (values: readonly (number | undefined)[]): number[] => values.filter((v): v is number => v !== undefined);
const ms = (value: number): string => (Number.isFinite(value) ? `${Math.round(value)}` : '-');

function row(label: string, outcomes: readonly Outcome[]): (string | number)[] {
  const client = summarize(defined(outcomes.map((o) => o.edgeToFirstAudio)));
  const stopped = summarize(defined(outcomes.map((o) => o.metrics?.userStoppedToFirstAudioMs)));
  const endpointing = summarize(defined(outcomes.map((o) => o.metrics?.endpointingMs)));
  const answered = outcomes.filter((o) => o.edgeToFirstAudio !== undefined).length;
  const preemptive = outcomes.map((o) => o.metrics?.preemptive ?? '?');
  const used = preemptive.filter((p) => p === 'used').length;
  return [
    label,
    `${answered}/${outcomes.length}`,
    ms(client.p50),
    ms(client.p99),
    ms(stopped.p50),
    ms(stopped.p99),
    ms(endpointing.p50),
    ms(endpointing.p99),
    outcomes.reduce((n, o) => n + o.premature, 0),
    `${outcomes.filter((o) => o.finals.length === 1).length}/${outcomes.length}`,
    `${used}`,
    `${outcomes.filter((o) => o.wireMetrics).length}/${outcomes.length}`,
  ];
}

const HEADERS = [
  'config',
  'answered',
  'edge→audio p50',
  'p99',
  'userStopped p50',
  'p99',
  'endpointing p50',
  'p99',
  'premature',
  'one turn',
  'preemptive used',
  'metrics.turn on wire',
];

function details(outcomes: readonly Outcome[]): string {
  return table(
    ['clip', 'edge→audio', 'userStopped', 'endpointing', 'premature', 'transcript.final'],
    outcomes.map((o) => [
      o.clip.name.length > 48 ? `${o.clip.name.slice(0, 45)}...` : o.clip.name,
      o.edgeToFirstAudio === undefined ? 'no answer' : ms(o.edgeToFirstAudio),
      o.metrics?.userStoppedToFirstAudioMs === undefined ? '-' : ms(o.metrics.userStoppedToFirstAudioMs),
      o.metrics?.endpointingMs === undefined ? '-' : ms(o.metrics.endpointingMs),
      o.premature,
      o.finals.map((f) => JSON.stringify(f)).join(' | '),
    ]),
  );
}

// ------------------------------------------------------------------------------------- main

const cpus = os.cpus();
console.log(`# bench/turns — end of turn as the user hears it`);
console.log(`machine: ${os.hostname()}, ${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`);
console.log(`date: ${new Date().toISOString()}`);
console.log(
  `VAD: Silero, pauseMs ${DEFAULT_VAD_CONFIG.pauseMs}, minSilenceMs ${DEFAULT_VAD_CONFIG.minSilenceMs}, prefixPaddingMs ${DEFAULT_VAD_CONFIG.prefixPaddingMs}; ` +
    `end of turn: lexical detector, minEndpointingMs ${DEFAULT_SESSION_SETTINGS.minEndpointingMs}, maxEndpointingMs ${DEFAULT_SESSION_SETTINGS.maxEndpointingMs}`,
);
console.log(
  `STT timing (scripted Google recognizer over loopback gRPC, in the server process): an interim result every ${INTERIM_EVERY_MS} ms of voiced audio ` +
    `(one more word per 300 ms of voice), the final ${FINAL_AFTER_EDGE_MS} ms of audio after the voice stops (10 ms windows, RMS > 0.02); ` +
    `fixed = the same server answering GoogleStt.transcribe() (the whole utterance after the end of turn)`,
);
console.log(`LLM and TTS: instant fakes (reply "Okay.", 200 ms of audio); the client streams 20 ms PCM16 frames in real time; ${TAIL_MS} ms of silence after each clip`);
console.log('');

const complete: Clip[] = [];
for (const text of COMPLETE) complete.push(clip(text, await speech(text), [text]));
const paused: Clip[] = [];
for (const [first, second, pauseMs] of PAUSED) {
  paused.push(clip(`${first} [${pauseMs} ms] ${second}`, concat([await speech(first), silence(pauseMs), await speech(second)]), [first, second]));
}
const offline: Clip[] = FIXTURES.map((name) => {
  const samples = fixture(name);
  return clip(`${name}.16k.wav`, samples, [], name === 'booking-noisy' ? lastAbove(fixture('booking')) : lastAbove(samples));
});
const [offFirst, offSecond, offPause] = OFFLINE_PAUSED;
const offlinePaused = clip(`${offFirst} [${offPause} ms] ${offSecond}`, concat([await speech(offFirst), silence(offPause), await speech(offSecond)]), []);
await closeSpeech();

const warnings = await checkSegments([...complete, ...paused]);
if (warnings.length > 0) console.log(`WARNING: the scripted recognizer's phrases do not line up with these clips: ${warnings.join('; ')}\n`);

const configs: TurnsConfig[] = ['fixed', 'adaptive', 'preemptive'];
const results = new Map<TurnsConfig, { stt: string; outcomes: Outcome[] }>();
for (const config of configs) {
  const started = performance.now();
  results.set(config, await run(config, [...complete, ...paused]));
  console.log(`ran ${config} (${results.get(config)?.stt}) in ${Math.round((performance.now() - started) / 1000)} s`);
}
console.log('');

const label: Record<TurnsConfig, string> = {
  fixed: 'fixed silence (batch STT, VAD minSilenceMs)',
  adaptive: 'adaptive end of turn (preemptive: false)',
  preemptive: 'adaptive + preemptive',
  offline: 'offline',
};
const split = (config: TurnsConfig, set: 'a' | 'b'): Outcome[] =>
  (results.get(config)?.outcomes ?? []).filter((o) => (set === 'a' ? complete : paused).includes(o.clip));

console.log(`## (a) ${complete.length} complete sentences and questions — target: edge → first audio p50 ≤ ${TARGET_COMPLETE_P50_MS} ms (times in ms)`);
console.log(table(HEADERS, configs.map((config) => row(label[config], split(config, 'a')))));
console.log('');
console.log(`## (b) ${paused.length} sentences with a 600–800 ms pause after an unfinished first half — target: 0 premature replies (times in ms)`);
console.log(table(HEADERS, configs.map((config) => row(label[config], split(config, 'b')))));
console.log('');
const lost = configs.flatMap((config) => results.get(config)?.outcomes ?? []).filter((o) => o.metrics !== undefined && !o.wireMetrics).length;
if (lost > 0) {
  console.log(`note: ${lost} turns' metrics.turn never reached the client; the server reported them through its onTurnEnd hook, which is where the figures above come from.`);
  console.log('');
}
for (const config of configs) {
  console.log(`### ${label[config]}: per clip`);
  console.log(details(results.get(config)?.outcomes ?? []));
  console.log('');
}

const started = performance.now();
const off = await run('offline', [...offline, offlinePaused]);
console.log(`## offline: ${off.stt} (ran in ${Math.round((performance.now() - started) / 1000)} s), default turn options — target: userStoppedToFirstAudioMs p50 ≤ ${TARGET_OFFLINE_P50_MS} ms`);
console.log(details(off.outcomes));
const fixtureOutcomes = off.outcomes.filter((o) => o.clip !== offlinePaused);
const stopped = summarize(defined(fixtureOutcomes.map((o) => o.metrics?.userStoppedToFirstAudioMs)));
const pausedOutcome = off.outcomes.find((o) => o.clip === offlinePaused);
console.log(
  `fixtures: userStoppedToFirstAudioMs p50 ${ms(stopped.p50)} ms (n ${stopped.n}, target ≤ ${TARGET_OFFLINE_P50_MS} ms); ` +
    `edge → first audio (client) p50 ${ms(summarize(defined(fixtureOutcomes.map((o) => o.edgeToFirstAudio))).p50)} ms`,
);
console.log(
  `paused sentence ${JSON.stringify(offlinePaused.name)}: ${pausedOutcome?.finals.length === 1 && pausedOutcome.premature === 0 ? 'stayed one turn' : 'did NOT stay one turn'} ` +
    `(${pausedOutcome?.finals.length ?? 0} transcript.final, ${pausedOutcome?.premature ?? 0} premature replies)`,
);
