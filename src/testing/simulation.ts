/**
 * A deterministic simulation of a whole voice session in virtual time: the real session actor
 * (machines + src/session bindings + playout pacing) with fake providers on a VirtualClock, fed
 * with scripted user events. It records every state, emitted event, input and outbound audio
 * frame with its virtual time and a global sequence number, so tests can check invariants.
 */
import type { SessionActorRef, SessionEmitted } from '../../machines/session.js';
import { stateName } from '../../machines/session.js';
import type { Guard } from '../session/actors.js';
import type { SessionOptions } from '../session/config.js';
import { createSession, newResumeToken } from '../session/session.js';
import { CallLedger, FakeLlm, type FakeLlmOptions, FakeStt, FakeTts, type FakeTtsOptions, type FailurePlan } from '../providers/fake/index.js';
import type { ChatMessage, PcmFloat, Providers, Tool } from '../providers/types.js';
import { VirtualClock } from './virtual-clock.js';

export type SimRecord =
  | { seq: number; t: number; kind: 'state'; state: string }
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
  readonly stt?: { readonly latencyMs?: number | ((call: number) => number); readonly fail?: FailurePlan };
  /** Your own providers in place of the fakes (e.g. the LLM under test); the others stay fakes. */
  readonly providers?: Partial<Providers>;
  /** Outbound (transport) sample rate. Default 24 000 (the fake TTS rate, so no resampling). */
  readonly outputSampleRate?: number;
}

const BLOCK = 16; // samples per utterance marker block

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
  #seq = 0;
  #utterances: string[] = [];
  #speaking = false;
  #speechStartedAt = 0;

  constructor(options: SimulationOptions = {}) {
    const clock = this.clock;
    this.stt = new FakeStt({
      clock,
      ledger: this.ledger,
      recognize: (audio) => this.#recognize(audio),
      ...(options.stt?.latencyMs === undefined ? {} : { latencyMs: options.stt.latencyMs }),
      ...(options.stt?.fail === undefined ? {} : { fail: options.stt.fail }),
    });
    this.llm = new FakeLlm({ clock, ledger: this.ledger, respond: options.respond ?? defaultRespond, ...options.llm });
    this.tts = new FakeTts({ clock, ledger: this.ledger, ...options.tts });
    const sampleRate = options.outputSampleRate ?? this.tts.sampleRate;
    this.actor = createSession(
      {
        providers: { stt: options.providers?.stt ?? this.stt, llm: options.providers?.llm ?? this.llm, tts: options.providers?.tts ?? this.tts },
        output: { sampleRate, send: (_frame, meta) => this.#record({ kind: 'frame', replyId: meta.replyId }) },
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
      const state = stateName(snapshot.value);
      if (state !== last) {
        last = state;
        this.#record({ kind: 'state', state });
      }
    });
    for (const type of [
      'vad.speechStart', 'vad.speechEnd', 'transcript.partial', 'transcript.final', 'turn.start', 'reply.delta',
      'reply.audioStart', 'reply.done', 'reply.paused', 'reply.resumed', 'tools.start', 'tools.end', 'error',
      'session.resumed', 'session.resumeRefused', 'session.closed',
    ] as const) {
      this.actor.on(type, (event) => this.#record({ kind: 'emit', event: event as SessionEmitted }));
    }
  }

  #record(record: SimRecordBody): void {
    this.records.push({ ...record, seq: this.#seq++, t: this.clock.now() } as SimRecord);
  }

  #recognize(audio: PcmFloat): string {
    const texts: string[] = [];
    for (let i = 0; i + BLOCK <= audio.samples.length; i += BLOCK) {
      const id = Math.round((audio.samples[i] ?? 0) * 1_000_000) - 1;
      const text = this.#utterances[id];
      if (text !== undefined && text.length > 0) texts.push(text);
    }
    return texts.join(' ');
  }

  start(): this {
    this.actor.start();
    return this;
  }

  get state(): string {
    return stateName(this.actor.getSnapshot().value);
  }

  get history(): readonly ChatMessage[] {
    return this.actor.getSnapshot().context.history;
  }

  get speaking(): boolean {
    return this.#speaking;
  }

  /** Moves virtual time forward, running everything that becomes due. */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  #input(input: string, detail?: string): void {
    this.#record(detail === undefined ? { kind: 'input', input } : { kind: 'input', input, detail });
  }

  /** The VAD detects the onset of user speech. */
  speechStart(): void {
    if (this.#speaking) return;
    this.#speaking = true;
    this.#speechStartedAt = this.clock.now();
    this.#input('speechStart');
    this.actor.send({ type: 'vad.speechStart', atMs: this.clock.now() });
  }

  /** The VAD reports the end of the utterance; `text` is what the fake STT will hear in it. */
  speechEnd(text: string): void {
    if (!this.#speaking) return;
    this.#speaking = false;
    this.#utterances.push(text);
    const samples = new Float32Array(BLOCK).fill(this.#utterances.length / 1_000_000);
    this.#input('speechEnd', text);
    this.actor.send({
      type: 'vad.speechEnd',
      atMs: this.clock.now(),
      durationMs: this.clock.now() - this.#speechStartedAt,
      audio: { samples, sampleRate: 16_000 },
    });
  }

  /** Speech onset, `durationMs` of speaking, then its end. */
  async say(text: string, durationMs = 1000): Promise<void> {
    this.speechStart();
    await this.advance(durationMs);
    this.speechEnd(text);
  }

  partial(text: string): void {
    this.#input('partial', text);
    this.actor.send({ type: 'stt.partial', text });
  }

  type(text: string): void {
    this.#input('text', text);
    this.actor.send({ type: 'user.text', text });
  }

  interrupt(): void {
    this.#input('interrupt');
    this.actor.send({ type: 'user.interrupt' });
  }

  dropTransport(): void {
    this.#input('drop');
    this.actor.send({ type: 'transport.lost' });
  }

  resume(token = this.resumeToken): void {
    this.#input('resume', token === this.resumeToken ? 'valid' : 'invalid');
    this.actor.send({ type: 'session.resume', token });
  }

  close(): void {
    this.#input('close');
    this.actor.send({ type: 'session.close', reason: 'test' });
  }

  emitted<T extends SessionEmitted['type']>(type: T): Extract<SessionEmitted, { type: T }>[] {
    return this.records.flatMap((r) => (r.kind === 'emit' && r.event.type === type ? [r.event as Extract<SessionEmitted, { type: T }>] : []));
  }

  states(): string[] {
    return this.records.flatMap((r) => (r.kind === 'state' ? [r.state] : []));
  }

  framesOf(replyId: number): number {
    return this.records.filter((r) => r.kind === 'frame' && r.replyId === replyId).length;
  }

  /** Live reply actors of the session (at most one, always). */
  liveReplies(): number {
    return Object.keys(this.actor.getSnapshot().children).filter((id) => id.startsWith('reply-')).length;
  }
}
