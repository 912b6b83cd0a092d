/**
 * One live voice session on the server: the session actor, the audio path between it and the
 * client's transport (inbound audio → 16 kHz → VAD; agent audio → 20 ms frames → transport), the
 * translation of the session's events into wire messages, turn metrics and hooks. A host outlives
 * its connections: a dropped socket suspends the session, a resume attaches a new one.
 */
import { createActor } from 'xstate';
import { type SessionActorRef, type SessionEvent, stateName } from '../../machines/session.js';
import { InboundPipeline } from '../audio/inbound.js';
import { type Clock, realClock } from '../clock.js';
import { VoxError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { ERROR_CODES } from '../protocol/error-codes.js';
import type { ServerMessage } from '../protocol/messages.js';
import type { ChatMessage, Providers, Tool } from '../providers/types.js';
import type { MotionLinkOptions } from '../motion/link.js';
import { applyGuard } from '../session/actors.js';
import { createMotionChild } from '../session/motion.js';
import { resolveSessionSettings, type SessionOptions } from '../session/config.js';
import { createSessionLogic } from '../session/session.js';
import type { AudioTransport } from '../transport/audio-transport.js';
import type { VadConfig } from '../vad/config.js';
import { createVadActor } from '../vad/actor.js';
import type { SharedVad } from '../vad/shared-vad.js';
import { callHook, type HookName, type Hooks, type TurnMetrics } from './hooks.js';

export type MessageSender = (message: ServerMessage) => void;

export interface SessionHostOptions {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly providers: Providers;
  readonly tools?: readonly Tool[];
  readonly systemPrompt?: string;
  readonly history?: readonly ChatMessage[];
  readonly session?: SessionOptions;
  /** VAD settings and the shared model; `false` for a text-only session. */
  readonly vad: { readonly config?: Partial<VadConfig>; readonly shared?: SharedVad } | false;
  /** Rate of the agent audio frames sent to the transport. */
  readonly outputSampleRate: number;
  readonly language?: string;
  readonly voice?: string;
  readonly hooks: Hooks;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** A hook threw or rejected. */
  readonly onHookError: (name: HookName, error: unknown, sessionId: string) => void;
  /** The session reached `closed`. */
  readonly onClosed: (host: SessionHost) => void;
  /** Attach an avatar: the session's Motion Server link. */
  readonly motion?: MotionLinkOptions;
  /** The conversation changed (a turn ended): persist it. */
  readonly onHistory?: (host: SessionHost, history: readonly ChatMessage[]) => void;
}

interface TurnClock {
  id: number;
  source: 'voice' | 'text';
  speechEndAt: number | undefined;
  finalAt: number | undefined;
  startAt: number;
  firstDeltaAt: number | undefined;
  firstFrameAt: number | undefined;
}

export class SessionHost {
  readonly id: string;
  readonly actor: SessionActorRef;
  readonly createdAt: number;
  readonly outputSampleRate: number;
  readonly #options: SessionHostOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #vadListeners = new Set<(frame: Float32Array) => void>();
  #send: MessageSender | undefined;
  #transport: AudioTransport | undefined;
  #transportCleanup: (() => void)[] = [];
  #inbound: InboundPipeline | undefined;
  #turn: TurnClock | undefined;
  #lastSpeechEndAt: number | undefined;
  #state = '';
  #closed = false;
  #closeReason = 'closed';
  #audioStarted = new Set<number>();
  /** The client's last playback report (websocket audio). */
  #heard: { replyId: number; playedMs: number } | undefined;

  constructor(options: SessionHostOptions) {
    this.#options = options;
    this.id = options.sessionId;
    this.#logger = options.logger.child({ session: options.sessionId });
    this.#clock = options.clock ?? realClock;
    this.createdAt = this.#clock.now();
    this.outputSampleRate = options.outputSampleRate;
    const settings = resolveSessionSettings(options.session);
    const hooks = options.hooks;
    const logic = createSessionLogic({
      providers: options.providers,
      output: {
        sampleRate: options.outputSampleRate,
        send: (frame, meta) => {
          const turn = this.#turn;
          if (turn !== undefined && turn.id === meta.replyId && turn.firstFrameAt === undefined) turn.firstFrameAt = this.#clock.now();
          this.#transport?.sendAudio(frame);
        },
        heardMs: (replyId) => (this.#heard !== undefined && this.#heard.replyId === replyId ? this.#heard.playedMs : undefined),
      },
      resumeToken: options.resumeToken,
      clock: this.#clock,
      logger: this.#logger,
      ...(options.tools === undefined ? {} : { tools: options.tools }),
      ...(options.language === undefined ? {} : { language: options.language }),
      ...(options.voice === undefined ? {} : { voice: options.voice }),
      ...(hooks.guard === undefined ? {} : { guard: hooks.guard }),
      ...(options.motion === undefined
        ? {}
        : {
            motion: createMotionChild({
              link: { ...options.motion, logger: this.#logger },
              onFeed: (message) => this.#emit(message.type === 'avatar.frames' ? { ...message, frames: [...message.frames] } : message),
              onError: (error, fatal) => {
                const code = error instanceof VoxError ? error.code : 'provider_unavailable';
                this.#logger.warn({ err: error, fatal }, 'motion link error');
                // The voice conversation goes on without the avatar: never fatal for the session.
                this.#emit({ type: 'error', code, message: `avatar: ${error.message}`, fatal: false });
                this.#hook('onError', { sessionId: this.id, code, message: error.message });
              },
            }),
          }),
      ...(options.vad === false
        ? {}
        : {
            vad: createVadActor({
              subscribe: (listener) => {
                this.#vadListeners.add(listener);
                return () => this.#vadListeners.delete(listener);
              },
              ...(options.vad.config === undefined ? {} : { config: options.vad.config }),
              ...(options.vad.shared === undefined ? {} : { vad: options.vad.shared }),
              onError: (error) => this.#logger.warn({ err: error }, 'VAD error'),
            }),
          }),
    });
    this.actor = createActor(logic, {
      input: {
        settings,
        tools: (options.tools ?? []).map(({ name, description, parameters }) => ({ name, description, parameters })),
        ...(options.systemPrompt === undefined ? {} : { systemPrompt: options.systemPrompt }),
        ...(options.history === undefined ? {} : { history: options.history }),
      },
      clock: this.#clock,
    }) as unknown as SessionActorRef;
    this.#wire();
  }

  start(): this {
    this.actor.start();
    return this;
  }

  get state(): string {
    return this.#state;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the session ended: `expired` (not resumed within the TTL), or the reason it was closed with. */
  get closeReason(): string {
    return this.#closeReason;
  }

  get connected(): boolean {
    return this.#send !== undefined;
  }

  get history(): readonly ChatMessage[] {
    return this.actor.getSnapshot().context.history;
  }

  get transport(): AudioTransport | undefined {
    return this.#transport;
  }

  /** A client connection now speaks for this session. */
  attach(send: MessageSender): void {
    this.#send = send;
  }

  /** Routes audio both ways through `transport` (replacing any previous one). */
  setTransport(transport: AudioTransport): void {
    this.#dropTransport();
    this.#transport = transport;
    const inbound = new InboundPipeline({ sampleRate: transport.inputFormat.sampleRate });
    this.#inbound = inbound;
    this.#transportCleanup.push(
      transport.onAudio((pcm) => {
        if (this.#vadListeners.size === 0) return;
        let frame: Float32Array;
        try {
          frame = inbound.push(pcm);
        } catch (error) {
          this.#report(error);
          return;
        }
        for (const listener of this.#vadListeners) listener(frame);
      }),
      transport.onError((error) => this.#report(error)),
      transport.onPlaybackProgress?.((progress) => {
        const replyId = Number(progress.replyId);
        if (Number.isInteger(replyId)) this.#heard = { replyId, playedMs: progress.playedMs };
      }) ?? (() => undefined),
      () => inbound.close(),
    );
  }

  /** The client's connection went away: the session waits for a resume (or its TTL). */
  detach(): void {
    this.#send = undefined;
    this.#dropTransport();
    if (!this.#closed) this.#input({ type: 'transport.lost' });
  }

  /** Resume the session with `token` (checked by the session itself, in constant time). */
  resume(token: string): boolean {
    if (this.#closed) return false;
    this.#input({ type: 'session.resume', token });
    return stateName(this.actor.getSnapshot().value) !== 'suspended';
  }

  async userText(text: string): Promise<void> {
    const controller = new AbortController();
    const guarded = await applyGuard(this.#options.hooks.guard, { kind: 'user', text }, controller.signal);
    if (guarded.trim().length === 0 || this.#closed) return;
    this.#input({ type: 'user.text', text: guarded });
  }

  interrupt(): void {
    if (!this.#closed) this.#input({ type: 'user.interrupt' });
  }

  close(reason = 'closed'): void {
    if (!this.#closed) this.#input({ type: 'session.close', reason });
  }

  /** Sends a client-originated event; one the current state does not take is logged at debug. */
  #input(event: SessionEvent): void {
    const before = this.actor.getSnapshot();
    this.actor.send(event);
    if (this.actor.getSnapshot() === before) {
      this.#logger.debug({ event: event.type, state: this.#state }, 'event ignored in this state');
    }
  }

  #dropTransport(): void {
    for (const cleanup of this.#transportCleanup.splice(0)) cleanup();
    const transport = this.#transport;
    this.#transport = undefined;
    this.#inbound = undefined;
    if (transport !== undefined) void transport.close();
  }

  #emit(message: ServerMessage): void {
    const send = this.#send;
    if (send === undefined) return;
    try {
      send(message);
    } catch (error) {
      this.#logger.warn({ err: error }, 'sending to the client failed');
    }
  }

  #report(error: unknown): void {
    const code = error instanceof VoxError ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    this.#emit({ type: 'error', code, message, fatal: false });
    this.#hook('onError', { sessionId: this.id, code, message });
  }

  #hook<K extends HookName>(name: K, argument: Parameters<NonNullable<Hooks[K]>>[0]): void {
    callHook(this.#options.hooks, name, argument, (hook, error) => {
      this.#logger.error({ err: error, hook }, 'hook failed');
      this.#options.onHookError(hook, error, this.id);
    });
  }

  #wire(): void {
    const actor = this.actor;
    const now = () => this.#clock.now();
    actor.subscribe({
      next: (snapshot) => {
        const state = stateName(snapshot.value);
        if (state !== this.#state) {
          const previous = this.#state;
          this.#state = state;
          this.#emit(previous === '' ? { type: 'session.state', state } : { type: 'session.state', state, previous });
        }
        if (snapshot.status === 'done' && !this.#closed) this.#finish();
      },
      error: (error) => {
        this.#logger.error({ err: error }, 'session actor failed');
        this.#emit({ type: 'error', code: 'internal', message: 'the session failed', fatal: true });
        this.#finish();
      },
    });
    actor.on('session.closed', (e) => {
      this.#closeReason = e.reason;
    });
    actor.on('vad.speechStart', (e) => {
      this.#emit({ type: 'vad.speech_start', atMs: e.atMs });
      this.#hook('onSpeechStart', { sessionId: this.id, atMs: e.atMs });
    });
    actor.on('vad.speechEnd', (e) => {
      this.#lastSpeechEndAt = now();
      this.#emit({ type: 'vad.speech_end', atMs: e.atMs, durationMs: e.durationMs });
      this.#hook('onSpeechEnd', { sessionId: this.id, durationMs: e.durationMs });
    });
    actor.on('transcript.partial', (e) => {
      this.#emit({ type: 'transcript.partial', text: e.text });
      this.#hook('onTranscript', { sessionId: this.id, text: e.text, final: false });
    });
    actor.on('transcript.final', (e) => {
      if (this.#lastSpeechEndAt !== undefined) this.#pendingFinalAt = now();
      this.#emit({ type: 'transcript.final', text: e.text });
      this.#hook('onTranscript', { sessionId: this.id, text: e.text, final: true });
    });
    actor.on('turn.start', (e) => {
      const voice = e.source === 'voice';
      this.#turn = {
        id: e.replyId,
        source: e.source,
        speechEndAt: voice ? this.#lastSpeechEndAt : undefined,
        finalAt: voice ? this.#pendingFinalAt : undefined,
        startAt: now(),
        firstDeltaAt: undefined,
        firstFrameAt: undefined,
      };
      this.#lastSpeechEndAt = undefined;
      this.#pendingFinalAt = undefined;
      this.#hook('onTurnStart', { sessionId: this.id, turnId: String(e.replyId), source: e.source });
    });
    actor.on('reply.delta', (e) => {
      const turn = this.#turn;
      if (turn !== undefined && turn.id === e.replyId && turn.firstDeltaAt === undefined) turn.firstDeltaAt = now();
      // With a guard, text reaches the client only once it has been allowed (reply.done).
      if (this.#options.hooks.guard === undefined) this.#emit({ type: 'reply.delta', replyId: String(e.replyId), text: e.text });
    });
    actor.on('reply.audioStart', (e) => {
      this.#audioStarted.add(e.replyId);
      this.#emit({ type: 'reply.audio_start', replyId: String(e.replyId), sampleRate: e.sampleRate });
    });
    actor.on('reply.done', (e) => {
      const replyId = String(e.replyId);
      if (this.#audioStarted.delete(e.replyId)) this.#emit({ type: 'reply.audio_end', replyId });
      this.#emit({ type: 'reply.done', replyId, text: e.text, interrupted: e.interrupted });
      this.#hook('onReply', { sessionId: this.id, turnId: replyId, text: e.text, interrupted: e.interrupted });
      this.#endTurn(e.replyId, e.interrupted);
      this.#options.onHistory?.(this, this.history);
    });
    actor.on('tools.start', (e) => {
      for (const call of e.calls) {
        let args: unknown = call.arguments;
        try {
          args = JSON.parse(call.arguments);
        } catch {
          // The model produced invalid JSON; show it as it is.
        }
        this.#emit({ type: 'tool.start', replyId: String(e.replyId), callId: call.id, name: call.name, arguments: args });
      }
    });
    actor.on('tools.end', (e) => {
      for (const result of e.results) {
        let value: unknown = result.content;
        try {
          value = JSON.parse(result.content);
        } catch {
          // Plain-text tool result.
        }
        this.#emit(
          result.ok
            ? { type: 'tool.end', replyId: String(e.replyId), callId: result.callId, name: result.name, ok: true, result: value }
            : { type: 'tool.end', replyId: String(e.replyId), callId: result.callId, name: result.name, ok: false, error: result.content.slice(0, 4096) },
        );
      }
    });
    actor.on('error', (e) => {
      const code = (isWireCode(e.code) ? e.code : 'internal') as Extract<ServerMessage, { type: 'error' }>['code'];
      this.#emit({ type: 'error', code, message: e.message, fatal: e.fatal });
      this.#hook('onError', { sessionId: this.id, code, message: e.message });
    });
  }

  #pendingFinalAt: number | undefined;

  #endTurn(replyId: number, interrupted: boolean): void {
    const turn = this.#turn;
    if (turn === undefined || turn.id !== replyId) return;
    this.#turn = undefined;
    const metrics: TurnMetrics = {
      sessionId: this.id,
      turnId: String(replyId),
      source: turn.source,
      interrupted,
      ...(turn.speechEndAt !== undefined && turn.firstFrameAt !== undefined ? { speechEndToFirstAudioMs: turn.firstFrameAt - turn.speechEndAt } : {}),
      ...(turn.speechEndAt !== undefined && turn.finalAt !== undefined ? { sttMs: turn.finalAt - turn.speechEndAt } : {}),
      ...(turn.firstDeltaAt !== undefined ? { llmFirstTokenMs: turn.firstDeltaAt - turn.startAt } : {}),
      ...(turn.firstDeltaAt !== undefined && turn.firstFrameAt !== undefined ? { ttsFirstAudioMs: turn.firstFrameAt - turn.firstDeltaAt } : {}),
    };
    const { sessionId: _sessionId, source: _source, interrupted: _interrupted, ...timings } = metrics;
    this.#emit({ type: 'metrics.turn', ...timings });
    this.#hook('onTurnEnd', metrics);
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropTransport();
    this.#vadListeners.clear();
    this.#options.onClosed(this);
  }
}

const WIRE_CODES = new Set<string>(ERROR_CODES);

function isWireCode(code: string): boolean {
  return WIRE_CODES.has(code);
}
