/**
 * Streaming speech recognition through a real VoiceServer (issue 10): partial transcripts while the
 * user speaks, the adaptive end of turn, interruption by words and the fall back to batch
 * transcription when the stream breaks.
 *
 * Nothing is faked between the microphone and the provider boundary: a loopback ws client streams
 * Flite speech in real time (test/scenario/harness.ts ScenarioClient), real Silero cuts it, and
 * GoogleStt talks gRPC to a loopback Speech server whose recognizer is scripted
 * (test/providers/servers/google-scripted.ts: it hears the voice in the audio it is sent, interim
 * results every 100 ms of voice, the final 150 ms of audio after the voice stops). The LLM and TTS
 * are the instant fakes. Every session runs at once (each starts in beforeAll, each `it` judges its
 * own), each on a server and a Speech server of its own.
 *
 * Times are client wall time. The audio edge is when the frame carrying the clip's last sample above
 * 0.5% of full scale was sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/providers/types.js';
import { GoogleStt } from '../../src/providers/google/index.js';
import { FakeLlm, FakeTts } from '../../src/providers/fake/index.js';
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { closeSpeech, concat, silence, speech } from '../helpers/speech.js';
import { GoogleServer, type RecognizeHandler } from '../providers/servers/google-server.js';
import { failAfterResults, scriptedRecognizer } from '../providers/servers/google-scripted.js';
import { delay, FRAME, ScenarioClient, type Timed } from '../scenario/harness.js';

const RATE = 16_000;
const SENTENCE = 'I would like to book a table for two people.';
const FIRST_HALF = 'I would like to book a table for';
const SECOND_HALF = 'two people.';
const THINKING_PAUSE_MS = 700;
const INTERRUPTION = 'Please change the booking to Friday instead.';
/** The VAD's minSilenceMs (default): the fixed end of turn a streaming recognizer has to beat. */
const MIN_SILENCE_MS = 480;
/** Generous bounds (real time on a shared machine): the decision and the first audio after the edge. */
const ENDPOINTING_BOUND_MS = 400;
/** Silence the microphone sends after a clip, and how long to watch after the answer for anything more. */
const TAIL_MS = 1500;
const QUIET_MS = 500;

/** The last sample of `clip` above 0.5% of full scale. */
function edgeSample(clip: Float32Array): number {
  for (let i = clip.length - 1; i >= 0; i--) if (Math.abs(clip[i] as number) > 0.005) return i;
  return -1;
}

const lastUser = (messages: readonly ChatMessage[]): string => [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);
const isWordPrefix = (prefix: string, of: string): boolean => words(of).slice(0, words(prefix).length).join(' ') === words(prefix).join(' ');

const LONG_REPLY = Array.from({ length: 30 }, (_, i) => `word${i + 1}`).join(' ');

interface Stack {
  readonly google: GoogleServer;
  readonly server: VoiceServer;
  readonly url: string;
}

/** A VoiceServer (real VAD) whose GoogleStt talks to a Speech server of its own, with these recognize handlers. */
async function stack(options: { turn?: VoiceServerOptions['turn']; handlers: RecognizeHandler[]; msPerWord?: number }): Promise<Stack> {
  const google = await new GoogleServer().start();
  google.recognizeHandlers.push(...options.handlers);
  const llm = new FakeLlm({ respond: (messages) => [lastUser(messages).startsWith('talk') ? LONG_REPLY : `You said: ${lastUser(messages)}`] });
  const server = new VoiceServer({
    port: 0,
    providers: { stt: new GoogleStt(google.clientOptions), llm, tts: new FakeTts({ sampleRate: RATE, msPerWord: options.msPerWord ?? 50 }) },
    vad: {},
    ...(options.turn === undefined ? {} : { turn: options.turn }),
  });
  const { url } = await server.start();
  return { google, server, url };
}

interface Trial {
  readonly client: ScenarioClient;
  /** When the frame carrying the clip's first sample / its audio edge was sent. */
  readonly startAt: number;
  readonly edgeAt: number;
  readonly of: (type: string) => Timed[];
  /** The first agent frame received after `at`. */
  readonly firstFrameAfter: (at: number) => number | undefined;
}

/** Speaks `clip` (then TAIL_MS of silence) into a fresh session once `before` has run; resolves once `until` says the outcome is in, plus QUIET_MS. */
async function speak(
  url: string,
  clip: Float32Array,
  options: { before?: (client: ScenarioClient) => Promise<void>; until: (client: ScenarioClient) => Promise<unknown> },
): Promise<Trial> {
  const client = await ScenarioClient.connect(url);
  try {
    await options.before?.(client);
    const playback = client.play(concat([clip, silence(TAIL_MS)]));
    await playback.done;
    await options.until(client);
    await delay(QUIET_MS);
    const sentAt = (sample: number): number => playback.sentAt[Math.floor(sample / FRAME)] as number;
    return {
      client,
      startAt: sentAt(0),
      edgeAt: sentAt(edgeSample(clip)),
      of: (type) => client.of(type),
      firstFrameAfter: (at) => client.frames.find((f) => f.t > at)?.t,
    };
  } finally {
    await client.close();
  }
}

const stacks = new Map<string, Stack>();
const trials = new Map<string, Promise<Trial>>();
const trial = (key: string): Promise<Trial> => trials.get(key) as Promise<Trial>;
const answered = (client: ScenarioClient): Promise<Timed> => client.next('reply.done', (m) => m['interrupted'] === false, 15_000);
const ms = (value: number | undefined): string => (value === undefined ? '-' : `${Math.round(value)} ms`);

/** Starts a trial on a stack of its own; its `it` awaits and judges it. */
async function start(key: string, options: Parameters<typeof stack>[0], run: (url: string) => Promise<Trial>): Promise<void> {
  const s = await stack(options);
  stacks.set(key, s);
  const running = run(s.url);
  running.catch(() => undefined); // judged by its own `it`
  trials.set(key, running);
}

beforeAll(async () => {
  const sentence = await speech(SENTENCE);
  const paused = concat([await speech(FIRST_HALF), silence(THINKING_PAUSE_MS), await speech(SECOND_HALF)]);
  const interruption = await speech(INTERRUPTION);

  await start('complete', { turn: { preemptive: false }, handlers: [scriptedRecognizer({ phrases: [SENTENCE] })] }, (url) =>
    speak(url, sentence, { until: (c) => c.next('metrics.turn') }),
  );
  await start('preemptive', { handlers: [scriptedRecognizer({ phrases: [SENTENCE] })] }, (url) => speak(url, sentence, { until: answered }));
  // One recognizer call hears both voiced segments: the utterance stays open across the pause.
  await start('thinking', { handlers: [scriptedRecognizer({ phrases: [FIRST_HALF, SECOND_HALF] })] }, (url) => speak(url, paused, { until: answered }));
  await start(
    'words',
    { turn: { minInterruptionWords: 2, minInterruptionMs: 5000 }, handlers: [scriptedRecognizer({ phrases: [INTERRUPTION] })], msPerWord: 200 },
    (url) =>
      speak(url, interruption, {
        before: async (c) => {
          c.send({ type: 'user.text', text: 'talk to me' });
          await c.waitFrames('1', 25); // half a second of the 6 s reply
        },
        until: async (c) => {
          await c.next('reply.done', (m) => m['replyId'] === '1', 15_000);
          await answered(c);
        },
      }),
  );
  // The streaming call breaks after its first interim result; the recognizer's batch transcription
  // (GoogleStt.transcribe(): a second StreamingRecognize call with the whole utterance) answers.
  const breaking = (): RecognizeHandler[] => [failAfterResults(scriptedRecognizer({ phrases: [SENTENCE] }), 1), scriptedRecognizer({ phrases: [SENTENCE] })];
  await start('failure', { turn: { preemptive: false }, handlers: breaking() }, (url) => speak(url, sentence, { until: answered }));
  await start('failure-preemptive', { handlers: breaking() }, (url) => speak(url, sentence, { until: answered }));
}, 30_000);

afterAll(async () => {
  await Promise.allSettled(trials.values());
  for (const s of stacks.values()) {
    await s.server.stop();
    await s.google.close();
  }
  await closeSpeech();
});

describe('streaming STT through VoiceServer (real Silero, GoogleStt over loopback gRPC, Flite speech in real time)', () => {
  it('transcript.partial reaches the client while the user speaks, then one transcript.final and one reply for the turn', async () => {
    const t = await trial('complete');
    const partials = t.of('transcript.partial');
    const speechEnd = t.of('vad.speech_end')[0];
    console.log(
      `partials: ${partials.map((p) => `${JSON.stringify(p.m['text'])} @${ms(p.t - t.edgeAt)}`).join(', ')}; ` +
        `vad.speech_end @${ms(speechEnd && speechEnd.t - t.edgeAt)} (relative to the audio edge)`,
    );
    expect(partials.length).toBeGreaterThanOrEqual(3);
    // Heard while speaking: the first ones arrive before the edge was even sent, all before the VAD's end.
    expect(partials.filter((p) => p.t < t.edgeAt).length).toBeGreaterThanOrEqual(2);
    expect(speechEnd).toBeDefined();
    expect(partials.every((p) => p.t <= speechEnd!.t)).toBe(true);
    expect(partials.every((p) => isWordPrefix(String(p.m['text']), SENTENCE))).toBe(true);
    expect(t.of('transcript.final').map((x) => x.m['text'])).toEqual([SENTENCE]);
    expect(t.of('reply.audio_start')).toHaveLength(1);
    expect(t.of('reply.done').map((x) => x.m)).toMatchObject([{ interrupted: false, text: `You said: ${SENTENCE}` }]);
  });

  it(`a complete sentence is answered before the VAD's minSilenceMs (${MIN_SILENCE_MS} ms): metrics.turn.endpointingMs < ${ENDPOINTING_BOUND_MS}`, async () => {
    const t = await trial('complete');
    const metrics = t.of('metrics.turn').map((x) => x.m);
    const first = t.firstFrameAfter(t.edgeAt);
    const speechEnd = t.of('vad.speech_end')[0];
    console.log(
      `complete sentence: audio edge → first agent frame ${ms(first && first - t.edgeAt)}, → vad.speech_end ${ms(speechEnd && speechEnd.t - t.edgeAt)}; ` +
        `metrics.turn ${JSON.stringify(metrics[0])}`,
    );
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({ preemptive: 'off' });
    expect(metrics[0]!['endpointingMs']).toBeLessThan(ENDPOINTING_BOUND_MS);
    // Wall-clock figures are the benchmark's (bench/turns); here the order of events decides: the
    // agent was already speaking when the VAD's minSilenceMs ran out.
    expect(first).toBeDefined();
    expect(first!).toBeLessThan(speechEnd!.t);
  });

  it('with preemptive replies (the default) the speculative reply is used: the same early answer, metrics.turn says preemptive: used', async () => {
    const t = await trial('preemptive');
    const first = t.firstFrameAfter(t.edgeAt);
    console.log(`preemptive: audio edge → first agent frame ${ms(first && first - t.edgeAt)}; metrics.turn ${JSON.stringify(t.of('metrics.turn')[0]?.m)}`);
    expect(t.of('transcript.final').map((x) => x.m['text'])).toEqual([SENTENCE]);
    expect(t.of('reply.audio_start')).toHaveLength(1);
    expect(first).toBeDefined();
    const metrics = t.of('metrics.turn').map((x) => x.m);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({ preemptive: 'used' });
    expect(metrics[0]!['endpointingMs']).toBeLessThan(ENDPOINTING_BOUND_MS);
  });

  it(`a ${THINKING_PAUSE_MS} ms thinking pause after "…a table for" stays one turn: one transcript.final with both halves, one reply, no audio before the sentence ends`, async () => {
    const t = await trial('thinking');
    const finals = t.of('transcript.final');
    console.log(
      `thinking pause: finals ${JSON.stringify(finals.map((x) => x.m['text']))}; first agent frame ${ms((t.client.frames[0]?.t ?? Number.NaN) - t.edgeAt)} after the edge of the second half`,
    );
    expect(finals.map((x) => x.m['text'])).toEqual([`${FIRST_HALF} ${SECOND_HALF}`]);
    expect(t.of('reply.audio_start')).toHaveLength(1);
    expect(t.of('reply.done').map((x) => x.m)).toMatchObject([{ interrupted: false, text: `You said: ${FIRST_HALF} ${SECOND_HALF}` }]);
    // Nothing of the agent was heard during the pause (a discarded speculation sends nothing).
    expect(t.client.frames[0]?.t).toBeGreaterThan(t.edgeAt);
    // The pause was long enough for the VAD to call it the end of speech: only the end of turn kept it one turn.
    expect(t.of('vad.speech_end').length).toBeGreaterThanOrEqual(2);
  });

  it('minInterruptionWords: 2 with minInterruptionMs: 5000 — real interim results confirm the interruption by words while the user still speaks', async () => {
    const t = await trial('words');
    const confirmed = t.of('interruption.confirmed');
    const cut = t.client.messages.find((x) => x.m.type === 'reply.done' && x.m['replyId'] === '1');
    console.log(
      `interruption: confirmed ${JSON.stringify(confirmed[0]?.m)} ${ms(confirmed[0] && confirmed[0].t - t.startAt)} after the clip started (its edge at ${ms(t.edgeAt - t.startAt)}); ` +
        `partials before it ${JSON.stringify(t.of('transcript.partial').filter((p) => confirmed[0] !== undefined && p.t <= confirmed[0].t).map((p) => p.m['text']))}`,
    );
    expect(confirmed.map((x) => x.m)).toMatchObject([{ replyId: '1', by: 'words' }]);
    expect(Number(confirmed[0]!.m['voicedMs'])).toBeLessThan(5000);
    // From interim results: long before the user finished (the final comes after the edge).
    expect(confirmed[0]!.t).toBeLessThan(t.edgeAt);
    expect(cut?.m).toMatchObject({ interrupted: true });
    // The words are the next turn, answered.
    expect(t.of('transcript.final').map((x) => x.m['text'])).toEqual([INTERRUPTION]);
    expect(t.of('reply.done').at(-1)?.m).toMatchObject({ interrupted: false, text: `You said: ${INTERRUPTION}` });
  });

  it.each([
    ['preemptive: false', 'failure'],
    ['preemptive replies on (the default)', 'failure-preemptive'],
  ])('a stream that fails mid-utterance falls back to batch transcription (%s): an error on the wire, and the turn is answered with the batch transcript', async (_, key) => {
    const t = await trial(key);
    const calls = stacks.get(key)!.google.recognizeCalls;
    const errors = t.of('error').map((x) => x.m);
    const first = t.firstFrameAfter(t.edgeAt);
    console.log(
      `stream failure (${key}): errors ${JSON.stringify(errors)}; partials ${JSON.stringify(t.of('transcript.partial').map((x) => x.m['text']))}; ` +
        `finals ${JSON.stringify(t.of('transcript.final').map((x) => x.m['text']))}; audio edge → first agent frame ${ms(first && first - t.edgeAt)}`,
    );
    expect(errors).toMatchObject([{ type: 'error', code: 'provider_unavailable', fatal: false }]);
    // The client hears which kind of provider failed, not the provider's own words (docs/protocol.md, error).
    expect(errors[0]!['message']).toBe('the speech-to-text provider is unavailable');
    // One interim made it before the break; then the whole utterance went to a batch call.
    expect(t.of('transcript.partial').length).toBeGreaterThanOrEqual(1);
    expect(calls.map((c) => c.requests[0]?.streamingConfig?.interimResults)).toEqual([true, false]);
    expect(t.of('transcript.final').map((x) => x.m['text'])).toEqual([SENTENCE]);
    expect(t.of('reply.audio_start')).toHaveLength(1);
    expect(t.of('reply.done').map((x) => x.m)).toMatchObject([{ interrupted: false, text: `You said: ${SENTENCE}` }]);
  });
});
