/**
 * The server side of bench/turns: a VoiceServer in its own process with real Silero VAD, instant
 * fake LLM and TTS, and the speech recognizer named by BENCH_TURNS_CONFIG:
 *
 *   fixed       GoogleStt's batch path only (transcribe(), no stream()): the end of turn is the VAD's
 *               minSilenceMs, then the utterance is transcribed — the behaviour before issue 10
 *   adaptive    GoogleStt streaming; the turn detector decides the end of turn; preemptive: false
 *   preemptive  the same, with preemptive replies (the default)
 *   offline     PocketsphinxStt (system ffmpeg), default turn options
 *
 * GoogleStt talks to a loopback Speech server in this process whose recognizer is scripted
 * (test/providers/servers/google-scripted.ts; BENCH_INTERIM_EVERY_MS, BENCH_FINAL_AFTER_EDGE_MS). The
 * parent tells it what the next clip says (`{ type: 'script', phrases }`, answered `{ type: 'scripted' }`)
 * and hears every turn's server metrics (`{ type: 'turn', metrics }`, from the onTurnEnd hook).
 */
import { GoogleStt } from '../src/providers/google/index.js';
import { FakeLlm, FakeTts } from '../src/providers/fake/index.js';
import { PocketsphinxStt } from '../src/providers/local/index.js';
import type { SttProvider } from '../src/providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../src/server/index.js';
import { GoogleServer } from '../test/providers/servers/google-server.js';
import { scriptedRecognizer } from '../test/providers/servers/google-scripted.js';

export type TurnsConfig = 'fixed' | 'adaptive' | 'preemptive' | 'offline';

export type ToParent =
  | { readonly type: 'ready'; readonly url: string; readonly stt: string }
  | { readonly type: 'scripted' }
  | { readonly type: 'turn'; readonly metrics: unknown };
export type ToChild = { readonly type: 'script'; readonly phrases: readonly string[] } | { readonly type: 'stop' };

const config = (process.env['BENCH_TURNS_CONFIG'] ?? 'preemptive') as TurnsConfig;
const send = (message: ToParent): void => void process.send?.(message);

const phrases: string[] = [];
let google: GoogleServer | undefined;
let stt: SttProvider;
if (config === 'offline') {
  const local = new PocketsphinxStt();
  // Build the in-domain model before the first turn (when this version has the step).
  await (local as { prepare?: () => Promise<unknown> }).prepare?.();
  stt = local;
} else {
  google = await new GoogleServer().start();
  google.defaultRecognizeHandler = scriptedRecognizer({
    phrases,
    interimEveryMs: Number(process.env['BENCH_INTERIM_EVERY_MS'] ?? 100),
    finalAfterEdgeMs: Number(process.env['BENCH_FINAL_AFTER_EDGE_MS'] ?? 150),
  });
  const streaming = new GoogleStt(google.clientOptions);
  // The batch path alone: without stream() the session transcribes each utterance after the VAD's end of speech.
  stt = config === 'fixed' ? { name: 'google-stt:batch', transcribe: (audio, options) => streaming.transcribe(audio, options) } : streaming;
}

const turn: VoiceServerOptions['turn'] = config === 'offline' ? {} : { preemptive: config === 'preemptive' };
const server = new VoiceServer({
  port: 0,
  providers: {
    stt,
    // Instant: the whole reply at once, then 200 ms of audio per word from the playout in real time.
    llm: new FakeLlm({ respond: () => ['Okay.'] }),
    tts: new FakeTts({ sampleRate: 16_000, msPerWord: 200 }),
  },
  vad: {},
  turn,
  session: { limits: { maxSessions: 1_000, maxPerIp: 1_000, maxPerPrincipal: 1_000 } },
  hooks: { onTurnEnd: (metrics) => send({ type: 'turn', metrics }) },
});

const address = await server.start();
send({ type: 'ready', url: address.url, stt: stt.name });
process.on('message', (message: ToChild) => {
  if (message.type === 'script') {
    phrases.length = 0;
    phrases.push(...message.phrases);
    send({ type: 'scripted' });
    return;
  }
  void (async () => {
    await server.stop();
    await google?.close();
    await (stt as { close?: () => Promise<void> }).close?.();
    process.exit(0);
  })();
});
