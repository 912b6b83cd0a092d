/**
 * The server side of bench/latency's barge-in figures: a VoiceServer in its own process with real
 * Silero VAD, the real-time playout, and the providers of test/scenario/harness.ts — an LLM that
 * answers a "talk" prompt with a 7 s reply, the fake TTS (200 ms a word, 16 kHz), and an STT that
 * recognizes the Flite clips it finds in the utterance audio (it synthesizes the same clips here,
 * Flite is deterministic). Started as a child process so the clients' work is not counted against it.
 */
import { VoiceServer } from '../src/server/index.js';
import { closeSpeech, speech } from '../test/helpers/speech.js';
import { BACKCHANNELS, CONTINUOUS_INTERRUPTION, INTERRUPTION, scenarioProviders } from '../test/scenario/harness.js';
import { ProcessMeter } from './process-meter.js';

const clips = new Map<string, Float32Array>();
for (const text of [...BACKCHANNELS, INTERRUPTION, CONTINUOUS_INTERRUPTION]) clips.set(text, await speech(text));
await closeSpeech();

const meter = new ProcessMeter();
const server = new VoiceServer({
  port: 0,
  providers: scenarioProviders(clips),
  vad: {},
  session: { limits: { maxSessions: 10_000, maxPerIp: 10_000, maxPerPrincipal: 10_000 } },
  maxMessagesPerSecond: 1_000,
});
server.route('POST', '/bench/reset', (_req, res) => {
  meter.reset();
  res.end('{}');
});
server.route('GET', '/bench/stats', (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ sessions: server.sessions, ...meter.figures() }));
});

const address = await server.start();
process.send?.({ url: address.url, port: address.port });
process.on('message', (message) => {
  if (message === 'stop') void server.stop().then(() => process.exit(0));
});
