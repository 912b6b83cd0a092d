/**
 * A deterministic simulation of a whole voice session in virtual time: the real session actor
 * (machines + src/session bindings + playout pacing) with fake providers on a VirtualClock, fed
 * with a scripted user. It records every state, emitted event, input and outbound audio frame with
 * its virtual time and a global sequence number, so tests can check invariants.
 *
 * The user's voice goes through the real turn detector (src/vad/speech-detector.ts) window by
 * window, 32 ms at a time, with a probability of 0.9 for a window the user voiced at least half of
 * and 0.05 otherwise — so every vad.* event the machine sees is one the real VAD sends, with its
 * timing: the provisional onset at the end of the first voiced window, the confirmed onset after
 * minSpeechMs, the pause after pauseMs, the end of the turn no sooner than minSilenceMs after the
 * last voiced window. Only the model's probabilities are simulated.
 */
import { fromCallback } from 'xstate';
import type { SessionActorRef, SessionEmitted, VadChildCommand, VadChildInput, VoiceState } from '../../machines/session.js';
import { publicState } from '../../machines/session.js';
import { resolveVadConfig, type VadConfig } from '../vad/config.js';
import { SILERO_WINDOW, VAD_FRAME_MS } from '../vad/model.js';
import { SpeechDetector } from '../vad/speech-detector.js';
import type { Guard } from '../session/actors.js';
import type { SessionOptions } from '../session/config.js';
import { createSession, newResumeToken } from '../session/session.js';
import { CallLedger, FakeLlm, type FakeLlmOptions, FakeStt, FakeTts, type FakeTtsOptions, type FailurePlan } from '../providers/fake/index.js';
import type { ChatMessage, PcmFloat, Providers, SttProvider, Tool } from '../providers/types.js';
import { withResilience, type ResilienceOptions } from '../providers/resilience/index.js';
import { AudioRecorder } from '../audio/recorder.js';
import type { TurnDetector } from '../turn/detector.js';
import type { Playbook } from '../playbook/types.js';
import { VirtualClock } from './virtual-clock.js';

export type SimRecord =
  | { seq: number; t: number; kind: 'state'; state: string; voice: VoiceState }
  | { seq: number; t: number; kind: 'emit'; event: SessionEmitted }
  | { seq: number; t: number; kind: 'input'; input: string; detail?: string }
  | { seq: number; t: number; kind: 'frame'; replyId: number };

type SimRecordBody = SimRecord extends infer R ? (R extends SimRecord ? Omit<R, 'seq' | 't'> : never) : never;

export interface SimulationOptions {
  readonly session?: SessionOptions;
  readonly systemPrompt?: string;
  readonly tools?: readonly Tool[];
  readonly guard?: Guard;
  /** The scripted agent: reply steps for a conversation. Default: echoes the last user message. */
  readonly respond?: FakeLlmOptions['respond'];
  readonly llm?: Omit<FakeLlmOptions, 'respond' | 'clock' | 'ledger'>;
  readonly tts?: Omit<FakeTtsOptions, 'clock' | 'ledger'>;
  readonly stt?: {
    readonly latencyMs?: number | ((call: number) => number);
    readonly fail?: FailurePlan;
    /**
     * A streaming recognizer (like Google's): each voiced stretch of the turn becomes a final segment
     * `finalLagMs` of audio after its voice stops (default 150). Without it the fake is batch-only.
     */
    readonly streaming?: boolean | { readonly finalLagMs?: number };
  };
  /** The end-of-turn detector. Default: the lexical one. */
  readonly turnDetector?: TurnDetector;
  /** A playbook the session runs (definePlaybook). */
  readonly playbook?: Playbook;
  /**
   * Wrap the fakes in the production timeout/retry layer (`withResilience`) on the virtual clock, so
   * a provider that hangs times out as it would in a server. Default: unwrapped.
   */
  readonly resilience?: Omit<ResilienceOptions, 'clock'>;
  /** Your own providers in place of the fakes (e.g. the LLM under test); the others stay fakes. */
  readonly providers?: Partial<Providers>;
  /** Outbound (transport) sample rate. Default 24 000 (the fake TTS rate, so no resampling). */
  readonly outputSampleRate?: number;
  /** The simulated VAD's turn-detection settings (the real defaults unless given). */
  readonly vad?: Partial<VadConfig>;
  /**
   * A websocket client that reports its playback (`playback.progress`) with every frame, this many
   * frames behind what was sent (its jitter buffer). Default: no reports (WebRTC-like).
   */
  readonly heardLagFrames?: number;
}


export function defaultRespond(messages: readonly ChatMessage[]): string[] {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  return [`You said ${last?.content ?? 'nothing'}. Anything else?`];
}

export class Simulation {
  readonly clock = new VirtualClock();
  readonly ledger = new CallLedger(() => this.clock.now());
  readonly records: SimRecord[] = [];
  readonly resumeToken = newResumeToken();
  readonly stt: FakeStt;
  readonly llm: FakeLlm;
  readonly tts: FakeTts;
  readonly actor: SessionActorRef;
  readonly vadConfig: VadConfig;
  /** The inbound audio as the VAD heard it (what the recognizer reads). */
  readonly recorder = new AudioRecorder();
  #seq = 0;
  /** Text of each utterance the user spoke, by marker id (1-based). */
  #utterances: string[] = [];
  /** The user's voiced intervals [start, end) in virtual ms; the last may be open (end = Infinity). */
  #voiced: [number, number, number][] = [];
  #voicing = false;
  #connected = true;
  #vadWake: (() => void) | undefined;
  #framesSent = new Map<number, number>();
  readonly #heardLag: number | undefined;

  constructor(options: SimulationOptions = {}) {
    const clock = this.clock;
    this.vadConfig = resolveVadConfig(options.vad);
    this.#heardLag = options.heardLagFrames;
    this.stt = new FakeStt({
      clock,
      ledger: this.ledger,
      recognize: (audio) => this.#recognize(audio),
      ...(options.stt?.latencyMs === undefined ? {} : { latencyMs: options.stt.latencyMs }),
      ...(options.stt?.fail === undefined ? {} : { fail: options.stt.fail }),
    });
    this.llm = new FakeLlm({ clock, ledger: this.ledger, respond: options.respond ?? defaultRespond, ...options.llm });
    this.tts = new FakeTts({ clock, ledger: this.ledger, ...options.tts });
    const streaming = options.stt?.streaming;
    if (streaming !== undefined && streaming !== false) this.#addStreaming(this.stt, streaming === true ? 150 : (streaming.finalLagMs ?? 150));
    const sampleRate = options.outputSampleRate ?? this.tts.sampleRate;
    const resilience = options.resilience;
    const wrap = <P extends Providers[keyof Providers]>(provider: P): P =>
      resilience === undefined ? provider : withResilience(provider, { ...resilience, clock });
    this.actor = createSession(
      {
        providers: {
          stt: wrap(options.providers?.stt ?? this.stt),
          llm: wrap(options.providers?.llm ?? this.llm),
          tts: wrap(options.providers?.tts ?? this.tts),
        },
        output: {
          sampleRate,
          send: (_frame, meta) => {
            this.#framesSent.set(meta.replyId, (this.#framesSent.get(meta.replyId) ?? 0) + 1);
            this.#record({ kind: 'frame', replyId: meta.replyId });
          },
          clear: () => {
            this.#record({ kind: 'input', input: 'clearOutput' });
            return 0;
          },
          ...(this.#heardLag === undefined
            ? {}
            : { heardMs: (replyId: number) => Math.max(0, (this.#framesSent.get(replyId) ?? 0) - (this.#heardLag ?? 0)) * 20 }),
        },
        vad: this.#vadLogic(),
        recorder: this.recorder,
        prefixPaddingMs: this.vadConfig.prefixPaddingMs,
        ...(options.turnDetector === undefined ? {} : { turnDetector: options.turnDetector }),
        ...(options.playbook === undefined ? {} : { playbook: options.playbook }),
        clock,
        resumeToken: this.resumeToken,
        ...(options.tools === undefined ? {} : { tools: options.tools }),
        ...(options.guard === undefined ? {} : { guard: options.guard }),
      },
      {
        ...(options.systemPrompt === undefined ? {} : { systemPrompt: options.systemPrompt }),
        ...(options.session === undefined ? {} : { options: options.session }),
      },
    );
    let last = '';
    this.actor.subscribe((snapshot) => {
      const { state, voice } = publicState(snapshot.value);
      const name = `${state}|${voice}`;
      if (name !== last) {
        last = name;
        this.#record({ kind: 'state', state, voice });
      }
    });
    this.actor.on('*', (event) => this.#record({ kind: 'emit', event }));
  }

  /**
   * The `vad` child: the real detector fed one window per 32 ms of virtual time while anything can
   * happen (the user voices, or an utterance is open); asleep otherwise, catching up on wake-up
   * with the silent windows it skipped (silence in the silent phase sends nothing).
   */
  #vadLogic() {
    return fromCallback<VadChildCommand, VadChildInput>(({ input, sendBack, receive }) => {
      const clock = this.clock;
      let detector = new SpeechDetector(this.vadConfig, (event) => sendBack(event), input.voicedMarksMs);
      let windows = 0; // windows processed (window k covers [32k, 32k + 32))
      let timer: unknown;
      const window = new Float32Array(SILERO_WINDOW);
      const processUpTo = (now: number): void => {
        while ((windows + 1) * VAD_FRAME_MS <= now) {
          const from = windows * VAD_FRAME_MS;
          const marker = this.#connected ? this.#markerIn(from, from + VAD_FRAME_MS) : 0;
          window.fill(marker / 1_000_000);
          windows += 1;
          if (this.#connected) {
            this.recorder.write(window);
            detector.process(marker > 0 ? 0.9 : 0.05, window);
          }
        }
      };
      // Also while a recognizer reads the turn's audio (it must hear the silence after the voice).
      const busy = (): boolean => this.#voicing || detector.speaking || detector.pending || this.actor.getSnapshot().context.open !== undefined;
      const tick = (): void => {
        timer = undefined;
        processUpTo(clock.now());
        schedule();
      };
      const schedule = (): void => {
        if (timer !== undefined || !busy()) return;
        timer = clock.setTimeout(tick, (windows + 1) * VAD_FRAME_MS - clock.now());
      };
      this.#vadWake = () => {
        processUpTo(clock.now());
        schedule();
      };
      receive((command) => {
        if (command.type !== 'vad.reset') return;
        processUpTo(clock.now());
        detector = new SpeechDetector(this.vadConfig, (event) => sendBack(event), input.voicedMarksMs);
        this.recorder.reset();
        schedule();
      });
      return () => {
        this.#vadWake = undefined;
        if (timer !== undefined) clock.clearTimeout(timer);
      };
    });
  }

  /** The id of the utterance the user voiced for at least half of [from, to), or 0. */
  #markerIn(from: number, to: number): number {
    for (const [start, end, id] of this.#voiced) {
      if (Math.min(to, end) - Math.max(from, start) >= (to - from) / 2) return id;
    }
    return 0;
  }

  #record(record: SimRecordBody): void {
    this.records.push({ ...record, seq: this.#seq++, t: this.clock.now() } as SimRecord);
  }

  /**
   * Makes the fake STT stream: it reads the turn's audio as the VAD hears it, and each voiced
   * stretch becomes a final segment once `finalLagMs` of silence followed it (or the audio ended).
   */
  #addStreaming(stt: FakeStt, finalLagMs: number): void {
    const texts = (ids: readonly number[]): string => ids.map((id) => this.#utterances[id - 1] ?? '').filter((t) => t.length > 0).join(' ');
    (stt as { stream?: SttProvider['stream'] }).stream = async function* (audio) {
      let ids: number[] = [];
      let silentSamples = 0;
      for await (const chunk of audio) {
        for (let i = 0; i < chunk.length; i += SILERO_WINDOW) {
          const id = Math.round((chunk[i] ?? 0) * 1_000_000);
          if (id > 0) {
            if (ids.at(-1) !== id) ids.push(id);
            silentSamples = 0;
          } else if (ids.length > 0) {
            silentSamples += Math.min(SILERO_WINDOW, chunk.length - i);
            if ((silentSamples / 16_000) * 1000 >= finalLagMs) {
              yield { text: texts(ids), final: true };
              ids = [];
            }
          }
        }
      }
      if (ids.length > 0) yield { text: texts(ids), final: true };
    };
  }

  /** What the fake STT hears: the texts of the utterances whose voice is in the audio, in order. */
  #recognize(audio: PcmFloat): string {
    const ids: number[] = [];
    for (let i = 0; i < audio.samples.length; i += SILERO_WINDOW) {
      const id = Math.round((audio.samples[i] ?? 0) * 1_000_000);
      if (id > 0 && ids.at(-1) !== id) ids.push(id);
    }
    return ids.map((id) => this.#utterances[id - 1] ?? '').filter((text) => text.length > 0).join(' ');
  }

  start(): this {
    this.actor.start();
    return this;
  }

  /** The turn region's public state (`listening`, `thinking`, `interrupted.confirming`, `suspended`, …). */
  get state(): string {
    return publicState(this.actor.getSnapshot().value).state;
  }

  /** The voice region's state. */
  get voice(): VoiceState {
    return publicState(this.actor.getSnapshot().value).voice;
  }

  get history(): readonly ChatMessage[] {
    return this.actor.getSnapshot().context.history;
  }

  /** The user is voicing right now. */
  get speaking(): boolean {
    return this.#voicing;
  }

  /** Moves virtual time forward, running everything that becomes due. */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  #input(input: string, detail?: string): void {
    this.#record(detail === undefined ? { kind: 'input', input } : { kind: 'input', input, detail });
  }

  /** The user starts voicing (the VAD hears it from the next window on). */
  speechStart(): void {
    if (this.#voicing) return;
    this.#voicing = true;
    this.#utterances.push('');
    this.#voiced.push([this.clock.now(), Number.POSITIVE_INFINITY, this.#utterances.length]);
    this.#input('speechStart');
    this.#vadWake?.();
  }

  /** The user stops voicing; `text` is what they said since speechStart (what the fake STT hears). */
  speechEnd(text: string): void {
    if (!this.#voicing) return;
    this.#voicing = false;
    const open = this.#voiced.at(-1);
    if (open !== undefined) {
      open[1] = this.clock.now();
      this.#utterances[open[2] - 1] = text;
    }
    this.#input('speechEnd', text);
    this.#vadWake?.();
  }

  /** The user voices `text` for `durationMs`, then stops (the VAD reports the end minSilenceMs later). */
  async say(text: string, durationMs = 1000): Promise<void> {
    this.speechStart();
    await this.advance(durationMs);
    this.speechEnd(text);
  }

  /** An interim transcript of the utterance being heard, as a streaming recognizer sends it. */
  partial(text: string): void {
    this.#input('partial', text);
    const utterance = this.actor.getSnapshot().context.open ?? -1;
    this.actor.send({ type: 'stt.partial', utterance, text, stable: false, atMs: this.recorder.positionMs });
  }

  type(text: string): void {
    this.#input('text', text);
    this.actor.send({ type: 'user.text', text });
  }

  interrupt(): void {
    this.#input('interrupt');
    this.actor.send({ type: 'user.interrupt' });
  }

  /** The transport drops: no audio reaches the VAD until a resume. */
  dropTransport(): void {
    this.#input('drop');
    this.#vadWake?.();
    this.#connected = false;
    this.actor.send({ type: 'transport.lost' });
  }

  resume(token = this.resumeToken): void {
    this.#input('resume', token === this.resumeToken ? 'valid' : 'invalid');
    this.actor.send({ type: 'session.resume', token });
    if (this.state !== 'suspended') {
      this.#vadWake?.();
      this.#connected = true;
    }
  }

  close(): void {
    this.#input('close');
    this.actor.send({ type: 'session.close', reason: 'test' });
  }

  emitted<T extends SessionEmitted['type']>(type: T): Extract<SessionEmitted, { type: T }>[] {
    return this.records.flatMap((r) => (r.kind === 'emit' && r.event.type === type ? [r.event as Extract<SessionEmitted, { type: T }>] : []));
  }

  /** The public states the session went through (consecutive duplicates collapsed). */
  states(): string[] {
    const out: string[] = [];
    for (const r of this.records) if (r.kind === 'state' && out.at(-1) !== r.state) out.push(r.state);
    return out;
  }

  framesOf(replyId: number): number {
    return this.#framesSent.get(replyId) ?? 0;
  }

  /** Live reply actors of the session (at most one, always). */
  liveReplies(): number {
    const replying = this.actor.getSnapshot().children['reply'];
    return replying !== undefined && replying.getSnapshot().status === 'active' ? 1 : 0;
  }
}
