/**
 * Real-audio barge-in scenarios against a VoiceServer, shared by test/scenario/*.test.ts and
 * bench/latency.ts (no vitest in here).
 *
 * - Providers: an LLM that answers a typed "talk" prompt with a long reply (35 words) and anything
 *   else with a short one (optionally after a first-token delay); the fake TTS at 200 ms per word
 *   (35 words = 7 s of 16 kHz audio); and an STT that is a fake at the provider boundary: it returns
 *   the text of each known clip whose samples it finds in the utterance audio the real VAD handed it.
 * - Client: a loopback `ws` client whose "microphone" streams 16 kHz PCM16 in 20 ms frames paced
 *   against a start time — silence unless a clip is playing — and records the wall time each frame
 *   was sent, every JSON message and the arrival time of every agent audio frame.
 * - Clocks: every figure is client wall time (performance.now()). A sample of a clip is "sent" when
 *   the frame that carries it was handed to ws.send(); speech in a clip starts at the first and ends
 *   at the last 5 ms block whose RMS is ≥ SPEECH_RMS (see speechEdges).
 */
import WebSocket from 'ws';
import { float32ToInt16 } from '../../src/audio/frame.js';
import { realClock, sleep } from '../../src/clock.js';
import { FakeTts } from '../../src/providers/fake/index.js';
import type { ChatMessage, LlmEvent, LlmProvider, LlmRequest, PcmFloat, SttOptions, SttProvider, Transcript } from '../../src/providers/types.js';
import { SharedVad } from '../../src/vad/shared-vad.js';
import { VadStream, type VadEvent } from '../../src/vad/vad-stream.js';

export const RATE = 16_000;
export const FRAME = 320;
export const FRAME_MS = 20;
/** Fake TTS: every word is this long. */
export const MS_PER_WORD = 200;
/** Agent frames per word (200 ms / 20 ms). */
export const FRAMES_PER_WORD = MS_PER_WORD / FRAME_MS;

export const BACKCHANNELS = ['yeah.', 'uh huh.', 'okay.', 'right.', 'sure.'] as const;
export const INTERRUPTION = 'No, stop. That is not what I asked.';
/** The same kind of objection spoken without Flite's pauses at punctuation: voiced time ≈ wall time. */
export const CONTINUOUS_INTERRUPTION = 'wait I need to change the booking to friday instead';

/** 35 words: 7 s of fake TTS audio, in five sentences (several TTS segments). */
export const LONG_REPLY =
  'Here is the plan for your trip next week. You fly out on Monday morning at nine. ' +
  'A car will meet you at the airport and take you to the hotel. ' +
  'The meeting starts on Tuesday at ten. You fly home on Thursday evening.';
export const SHORT_REPLY = 'Sorry, go ahead.';

/** A typed prompt that gets the long reply; `slow` ones wait for the LLM's first-token delay. */
export const talkPrompt = (id: string, slow = false): string => `${slow ? 'slowly ' : ''}talk to me ${id}`;
const isTalk = (text: string): boolean => /^(slowly )?talk to me /.test(text);

export const words = (text: string): string[] => text.split(/\s+/).filter((w) => w.length > 0);

// ------------------------------------------------------------------------------------- LLM

export interface LlmCall {
  readonly messages: readonly ChatMessage[];
  readonly startedAt: number;
  aborted: boolean;
  /** Text chunks yielded before the call ended. */
  chunks: number;
}

export class ScenarioLlm implements LlmProvider {
  readonly name = 'scenario-llm';
  readonly calls: LlmCall[] = [];
  readonly #slowFirstTokenMs: number;
  readonly #tokenIntervalMs: number;

  constructor(options: { slowFirstTokenMs?: number; tokenIntervalMs?: number } = {}) {
    this.#slowFirstTokenMs = options.slowFirstTokenMs ?? 2500;
    this.#tokenIntervalMs = options.tokenIntervalMs ?? 2;
  }

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const { signal } = request;
    const call: LlmCall = { messages: request.messages, startedAt: performance.now(), aborted: false, chunks: 0 };
    this.calls.push(call);
    signal.addEventListener('abort', () => (call.aborted = true), { once: true });
    const last = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    await sleep(realClock, last.startsWith('slowly ') ? this.#slowFirstTokenMs : 0, signal);
    const reply = isTalk(last) ? LONG_REPLY : SHORT_REPLY;
    const pieces = reply.match(/\S+\s*/g) ?? [];
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await sleep(realClock, this.#tokenIntervalMs, signal);
      call.chunks++;
      yield { type: 'text', text: piece };
    }
    yield { type: 'usage', usage: { inputTokens: 10, outputTokens: pieces.length } };
  }

  /** The completion asked after the user said `text` (the turn that `text` started). */
  callAfter(text: string): LlmCall | undefined {
    return this.calls.find((c) => c.messages.at(-1)?.role === 'user' && c.messages.at(-1)?.content === text);
  }
}

// ------------------------------------------------------------------------------------- STT

/** Runs of a clip's int16 samples used to find it in utterance audio. */
interface Fingerprint {
  readonly text: string;
  /** Where each probe starts in the clip, and its samples. */
  readonly probes: readonly { readonly at: number; readonly samples: Int16Array }[];
}

const PROBE = 32;

/** Probes in the 6 loudest 10 ms blocks of the clip (RMS ≥ 0.1, at least 30 ms apart; Flite's leading noise floor is the same in every clip). */
export function fingerprint(text: string, clip: Float32Array): Fingerprint {
  const pcm = float32ToInt16(clip);
  const block = 160;
  const loud = (0.1 * 32768) ** 2 * block;
  const energies: { at: number; energy: number }[] = [];
  for (let at = 0; at + block <= pcm.length; at += block) {
    let energy = 0;
    for (let i = at; i < at + block; i++) energy += (pcm[i] as number) ** 2;
    if (energy >= loud) energies.push({ at, energy });
  }
  energies.sort((a, b) => b.energy - a.energy);
  const chosen: number[] = [];
  for (const { at } of energies) {
    if (chosen.every((c) => Math.abs(c - at) >= 480)) chosen.push(at);
    if (chosen.length === 6) break;
  }
  if (chosen.length < 2) throw new Error(`clip ${JSON.stringify(text)} is too quiet to fingerprint`);
  return { text, probes: chosen.map((at) => ({ at: at + 40, samples: pcm.slice(at + 40, at + 40 + PROBE) })) };
}

export interface SttCall {
  readonly samples: number;
  readonly text: string;
  /** Every probe found matched sample for sample (the websocket 16 kHz path does no resampling). */
  readonly exact: boolean;
  /** Where each recognized clip starts in the utterance (samples; negative: its start was cut off). */
  readonly at: readonly number[];
}

/**
 * STT that recognizes known clips: the text of every clip two of whose probes occur in the utterance
 * at the offsets they have in the clip (each sample within ±1 LSB; `exact` says whether all were
 * equal), in the order the clips occur.
 */
export class FingerprintStt implements SttProvider {
  readonly name = 'fingerprint-stt';
  readonly calls: SttCall[] = [];
  readonly #prints: Fingerprint[];

  constructor(clips: ReadonlyMap<string, Float32Array>) {
    this.#prints = [...clips].map(([text, clip]) => fingerprint(text, clip));
  }

  async transcribe(audio: PcmFloat, _options: SttOptions): Promise<Transcript> {
    const pcm = float32ToInt16(audio.samples);
    const found: { text: string; at: number }[] = [];
    let exact = true;
    for (const print of this.#prints) {
      // Where the clip would start in the utterance, by each probe found; two must agree.
      const starts = new Map<number, boolean>();
      for (const probe of print.probes) {
        const match = find(pcm, probe.samples);
        if (match === undefined) continue;
        const start = match.at - probe.at;
        if (starts.has(start)) {
          exact &&= match.exact && (starts.get(start) as boolean);
          found.push({ text: print.text, at: start });
          break;
        }
        starts.set(start, match.exact);
      }
    }
    found.sort((a, b) => a.at - b.at);
    const text = found.map((f) => f.text).join(' ');
    this.calls.push({ samples: pcm.length, text, exact, at: found.map((f) => f.at) });
    return { text, final: true };
  }
}

export function find(haystack: Int16Array, needle: Int16Array): { at: number; exact: boolean } | undefined {
  const first = needle[0] as number;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (Math.abs((haystack[i] as number) - first) > 1) continue;
    let exact = true;
    for (let j = 1; j < needle.length; j++) {
      const d = Math.abs((haystack[i + j] as number) - (needle[j] as number));
      if (d > 1) continue outer;
      if (d !== 0) exact = false;
    }
    return { at: i, exact: exact && haystack[i] === first };
  }
  return undefined;
}

export function scenarioProviders(clips: ReadonlyMap<string, Float32Array>, llm = new ScenarioLlm()) {
  return {
    stt: new FingerprintStt(clips),
    llm,
    // Synthesis is instant; the playout paces the 7 s of audio in real time.
    tts: new FakeTts({ sampleRate: RATE, msPerWord: MS_PER_WORD }),
  };
}

// ------------------------------------------------------------------------------------- audio

/** 5 ms blocks whose RMS reaches this (≈ −34 dBFS) are speech. */
export const SPEECH_RMS = 0.02;

/** First and last speech sample of a clip (first sample of the first speech block, last of the last). */
export function speechEdges(clip: Float32Array | Int16Array): { first: number; last: number } {
  const block = 80;
  const scale = clip instanceof Int16Array ? 1 / 32768 : 1;
  let first = -1;
  let last = -1;
  for (let at = 0; at + block <= clip.length; at += block) {
    let sum = 0;
    for (let i = at; i < at + block; i++) sum += ((clip[i] as number) * scale) ** 2;
    if (Math.sqrt(sum / block) >= SPEECH_RMS) {
      if (first < 0) first = at;
      last = at + block - 1;
    }
  }
  return { first, last };
}

/**
 * The VAD events of a clip spoken at stream position `streamSample` after digital silence, offline:
 * the same samples the session's VAD got (zeros from the start of the stream, then the clip), so the
 * same 512-sample window grid and the same model state. (Silero's state keeps drifting through long
 * digital silence: the same clip scores a different voiced time after 0.5 s than after 20 s of it.)
 * `atMs` values are in clip time.
 */
export async function vadOfClip(vad: SharedVad, clip: Float32Array, streamSample: number): Promise<VadEvent[]> {
  const events: VadEvent[] = [];
  const stream = new VadStream({ vad, voicedMarksMs: [600], onEvent: (e) => events.push(e) });
  const audio = new Float32Array(streamSample + clip.length + RATE * 2);
  audio.set(clip, streamSample);
  for (let i = 0; i < audio.length; i += FRAME) stream.push(audio.subarray(i, i + FRAME));
  await stream.whenIdle();
  stream.close();
  const shift = (streamSample * 1000) / RATE;
  return events.map((e) => ('atMs' in e ? { ...e, atMs: e.atMs - shift } : e));
}

// ------------------------------------------------------------------------------------- client

export interface Message {
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface Timed {
  readonly t: number;
  readonly m: Message;
}

export interface AgentFrame {
  readonly t: number;
  /** The reply whose reply.audio_start came last before this frame. */
  readonly replyId: string | undefined;
}

export interface Playback {
  /** Position of the clip's first sample in the session's input stream. */
  readonly streamSample: number;
  /** Wall time each frame of the clip was sent. */
  readonly sentAt: number[];
  /** Resolves once the last frame of the clip was sent. */
  readonly done: Promise<void>;
}

/** The client's microphone: real-time 20 ms PCM16 frames, silence unless a clip is playing. */
class Mic {
  /** Wall time each frame of the stream was sent, by frame index (stream sample / FRAME). */
  readonly sentAt: number[] = [];
  readonly #send: (frame: Int16Array) => void;
  #queue: { pcm: Int16Array; offset: number; playback: Playback; resolve: () => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #anchor = 0;
  #frames = 0;
  #stopped = false;

  constructor(send: (frame: Int16Array) => void) {
    this.#send = send;
  }

  start(): void {
    this.#anchor = performance.now();
    this.#tick();
  }

  /** Queues a clip; it starts on the next frame. */
  play(clip: Float32Array): Playback {
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const playback: Playback = { streamSample: -1, sentAt: [], done };
    this.#queue.push({ pcm: float32ToInt16(clip), offset: 0, playback, resolve });
    return playback;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #tick = (): void => {
    if (this.#stopped) return;
    // Frame n is due at anchor + n × 20 ms; frames a late timer missed go out at once.
    while (this.#anchor + this.#frames * FRAME_MS <= performance.now()) {
      const frame = new Int16Array(FRAME);
      const item = this.#queue[0];
      if (item !== undefined) {
        if (item.offset === 0) (item.playback as { streamSample: number }).streamSample = this.#frames * FRAME;
        frame.set(item.pcm.subarray(item.offset, item.offset + FRAME));
        item.offset += FRAME;
      }
      this.#send(frame);
      const sent = performance.now();
      this.sentAt.push(sent);
      this.#frames++;
      if (item !== undefined) {
        item.playback.sentAt.push(sent);
        if (item.offset >= item.pcm.length) {
          this.#queue.shift();
          item.resolve();
        }
      }
    }
    this.#timer = setTimeout(this.#tick, Math.max(0, this.#anchor + this.#frames * FRAME_MS - performance.now()));
  };
}

export class ScenarioClient {
  readonly ws: WebSocket;
  readonly messages: Timed[] = [];
  readonly frames: AgentFrame[] = [];
  readonly #mic: Mic;
  #reply: string | undefined;
  #waiters: { match: (m: Message) => boolean; resolve: (t: Timed) => void }[] = [];

  private constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.#mic = new Mic((frame) => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
    });
    this.ws.on('message', (data, binary) => {
      const t = performance.now();
      if (binary) {
        this.frames.push({ t, replyId: this.#reply });
        return;
      }
      const m = JSON.parse(String(data)) as Message;
      if (m.type === 'reply.audio_start') this.#reply = String(m['replyId']);
      const timed = { t, m };
      this.messages.push(timed);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(m)) return true;
        w.resolve(timed);
        return false;
      });
    });
  }

  /** Connects, says session.hello (websocket audio, 16 kHz) and opens the microphone. */
  static async connect(url: string): Promise<ScenarioClient> {
    const client = new ScenarioClient(url);
    await new Promise<void>((resolve, reject) => {
      client.ws.once('open', () => resolve());
      client.ws.once('error', reject);
    });
    client.send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: RATE } });
    await client.next('session.ready');
    client.#mic.start();
    return client;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  play(clip: Float32Array): Playback {
    return this.#mic.play(clip);
  }

  /** When the frame carrying sample `streamSample` of the input stream was sent (undefined: not yet). */
  sentAt(streamSample: number): number | undefined {
    return this.#mic.sentAt[Math.floor(streamSample / FRAME)];
  }

  /** The first message (already received or future) of `type` matching `match`. */
  next(type: string, match: (m: Message) => boolean = () => true, timeoutMs = 20_000): Promise<Timed> {
    const seen = this.messages.find((x) => x.m.type === type && match(x.m));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} within ${timeoutMs} ms; got ${this.messages.map((x) => x.m.type).join(', ')}`)),
        timeoutMs,
      );
      this.#waiters.push({
        match: (m) => m.type === type && match(m),
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
      });
    });
  }

  of(type: string): Timed[] {
    return this.messages.filter((x) => x.m.type === type);
  }

  /** Arrival times of the agent frames of `replyId`. */
  framesOf(replyId: string): number[] {
    return this.frames.filter((f) => f.replyId === replyId).map((f) => f.t);
  }

  async waitFrames(replyId: string, count: number, timeoutMs = 10_000): Promise<void> {
    const until = performance.now() + timeoutMs;
    while (this.framesOf(replyId).length < count) {
      if (performance.now() > until) throw new Error(`fewer than ${count} frames of reply ${replyId} within ${timeoutMs} ms`);
      await delay(5);
    }
  }

  async close(): Promise<void> {
    this.#mic.stop();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.close();
    await closed;
  }
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------------------------- analysis

/** A pause in a reply's audio: consecutive agent frames further apart than GAP_MS. */
export const GAP_MS = 100;

export interface Pause {
  /** Arrival of the last agent frame before the gap. */
  readonly lastFrameAt: number;
  /** Arrival of the first agent frame after it (undefined: the audio never came back). */
  readonly resumedAt: number | undefined;
  /** Frames before / after the gap. */
  readonly framesBefore: number;
  readonly framesAfter: number;
}

/**
 * The first gap in `frames` (arrival times) after `fromMs`, the instant its cause was sent. The end
 * of the audio counts as a gap that never ends (`resumedAt` undefined).
 */
export function pauseAfter(frames: readonly number[], fromMs: number, gapMs = GAP_MS): Pause | undefined {
  for (let k = 0; k < frames.length; k++) {
    const t = frames[k] as number;
    // The frame before the pause cannot have left the server before the speech reached it, but may
    // arrive up to one frame period before the instant the onset sample was sent.
    if (t < fromMs - FRAME_MS) continue;
    const next = frames[k + 1];
    if (next === undefined || next - t > gapMs) {
      return { lastFrameAt: t, resumedAt: next, framesBefore: k + 1, framesAfter: frames.length - k - 1 };
    }
  }
  return undefined;
}

/** The longest gap between consecutive frames arriving after `fromMs`. */
export function longestGap(frames: readonly number[], fromMs: number): number {
  let longest = 0;
  for (let k = 1; k < frames.length; k++) {
    if ((frames[k] as number) < fromMs) continue;
    longest = Math.max(longest, (frames[k] as number) - (frames[k - 1] as number));
  }
  return longest;
}

// ------------------------------------------------------------------------------------- trials

export type TrialKind = 'backchannel' | 'interruption' | 'thinking' | 'noise';

export interface Trial {
  readonly name: string;
  readonly kind: TrialKind;
  readonly client: ScenarioClient;
  readonly prompt: string;
  readonly clip: Float32Array;
  readonly playback: Playback;
  /** Wall time the clip's first / last speech sample was sent (speechEdges). */
  readonly onsetAt: number;
  readonly speechEndAt: number;
  /** reply.done of the first reply. */
  readonly done1: Timed;
  /** For interruptions: the transcript and the second reply. */
  readonly final: Timed | undefined;
  readonly done2: Timed | undefined;
  /** Frames of reply 1 (arrival times). */
  readonly frames1: number[];
  readonly pause: Pause | undefined;
}

export interface TrialOptions {
  readonly name: string;
  readonly kind: TrialKind;
  readonly clip: Float32Array;
  /** Reply-1 frames to receive before the clip starts (not for `thinking`). Default 50 (1 s). */
  readonly leadFrames?: number;
  /** How long to watch after reply.done for anything that should not happen. Default 1000 ms. */
  readonly quietMs?: number;
}

/**
 * One session: a typed prompt starts the long reply; once `leadFrames` of its audio arrived (or, for
 * `thinking`, as soon as the session thinks), the clip is spoken into the microphone. Resolves when
 * the outcome is known: reply 1 done (+ quietMs), and for a cut, the transcript and reply 2 done.
 */
export async function runTrial(url: string, options: TrialOptions): Promise<Trial> {
  const client = await ScenarioClient.connect(url);
  try {
    const prompt = talkPrompt(`${options.name} ${Math.random().toString(36).slice(2, 8)}`, options.kind === 'thinking');
    client.send({ type: 'user.text', text: prompt });
    if (options.kind === 'thinking') await client.next('session.state', (m) => m['state'] === 'thinking');
    else await client.waitFrames('1', options.leadFrames ?? 50);
    const playback = client.play(options.clip);
    await playback.done;
    const edges = speechEdges(options.clip);
    const sentAt = (sample: number): number => playback.sentAt[Math.floor(sample / FRAME)] as number;
    const onsetAt = edges.first >= 0 ? sentAt(edges.first) : (playback.sentAt[0] as number);
    const speechEndAt = edges.last >= 0 ? sentAt(edges.last) : (playback.sentAt.at(-1) as number);
    const done1 = await client.next('reply.done', (m) => m['replyId'] === '1', 30_000);
    let final: Timed | undefined;
    let done2: Timed | undefined;
    if (done1.m['interrupted'] === true) {
      final = await client.next('transcript.final', () => true, 10_000);
      done2 = await client.next('reply.done', (m) => m['replyId'] === '2', 10_000);
    }
    await delay(options.quietMs ?? 1000);
    const frames1 = client.framesOf('1');
    return {
      name: options.name,
      kind: options.kind,
      client,
      prompt,
      clip: options.clip,
      playback,
      onsetAt,
      speechEndAt,
      done1,
      final,
      done2,
      frames1,
      pause: pauseAfter(frames1, onsetAt),
    };
  } finally {
    await client.close();
  }
}

/** A fresh shared Silero model for offline measurements (close it when done). */
export function offlineVad(): SharedVad {
  return new SharedVad();
}

/** When the audio the session's VAD decided on was sent, from the offline replay of the same stream (vadOfClip). */
export interface VadTimes {
  /** The last sample of the first window ≥ threshold (vad.onset): the pause cannot come before it. */
  readonly onsetWindowAt: number | undefined;
  /** The last sample of the window that completed the minInterruptionMs mark (vad.voiced). */
  readonly markAt: number | undefined;
  /** The last sample of the last voiced window (vad.speechEnd.atMs): pauseMs and the false-interruption timeout count from here. */
  readonly lastVoicedAt: number | undefined;
  readonly voicedMs: number;
}

export function vadTimes(t: Trial, events: readonly VadEvent[]): VadTimes {
  const at = (clipMs: number | undefined): number | undefined =>
    clipMs === undefined ? undefined : t.client.sentAt(t.playback.streamSample + Math.round(clipMs * (RATE / 1000)) - 1);
  type Of<T extends VadEvent['type']> = Extract<VadEvent, { type: T }>;
  const onset = events.find((e): e is Of<'vad.onset'> => e.type === 'vad.onset');
  const mark = events.find((e): e is Of<'vad.voiced'> => e.type === 'vad.voiced');
  const ends = events.filter((e): e is Of<'vad.speechEnd'> => e.type === 'vad.speechEnd');
  return {
    onsetWindowAt: at(onset === undefined ? undefined : onset.atMs + 32),
    markAt: at(mark?.atMs),
    lastVoicedAt: at(ends.at(-1)?.atMs),
    voicedMs: ends.reduce((sum, e) => sum + e.voicedMs, 0),
  };
}
