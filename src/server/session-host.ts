/**
 * One live voice session on the server. It composes, and does little itself:
 * - the session actor, built by createSession (src/session/session.ts);
 * - its audio path, an AudioBinding (src/session/audio-binding.ts): transport ⇄ VAD / playout;
 * - the avatar relay, when a Motion Server link is configured (src/session/motion.ts);
 * - the wire codec (src/protocol/session-events.ts): session events and states → client messages;
 * - turn metrics (./turn-metrics.ts) and the application hooks.
 * A host outlives its connections: a dropped socket suspends the session, a resume attaches a new one.
 */
import { publicState, type SessionActorRef, type SessionEmitted, type SessionEvent, type VoiceState } from '../../machines/session.js';
import { type Clock, realClock } from '../clock.js';
import { VoxError } from '../errors.js';
import { createMotionLinkActor, type MotionLinkOptions } from '../motion/link.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMessage } from '../protocol/messages.js';
import { SessionEventEncoder, wireErrorCode } from '../protocol/session-events.js';
import type { ChatMessage, Providers, Tool } from '../providers/types.js';
import { applyGuard } from '../session/actors.js';
import { AudioBinding } from '../session/audio-binding.js';
import type { SessionOptions } from '../session/config.js';
import { relayMotion } from '../session/motion.js';
import { createSession } from '../session/session.js';
import type { TurnDetector } from '../turn/detector.js';
import type { Playbook, StageHookContext } from '../playbook/types.js';
import { cloneStageData } from '../../machines/playbook.js';
import type { AudioTransport } from '../transport/audio-transport.js';
import type { VadConfig } from '../vad/config.js';
import type { SharedVad } from '../vad/shared-vad.js';
import { callHook, type HookName, type Hooks } from './hooks.js';
import { metricsTurnMessage, TurnMetricsTracker } from './turn-metrics.js';

export type MessageSender = (message: ServerMessage) => void;

export interface SessionHostOptions {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly providers: Providers;
  readonly tools?: readonly Tool[];
  readonly systemPrompt?: string;
  readonly history?: readonly ChatMessage[];
  readonly session?: SessionOptions;
  /** How likely the user has finished a turn (docs/turn-detection.md). Default: the lexical detector. */
  readonly turnDetector?: TurnDetector;
  /** The playbook the session runs, and the stage to resume in (a restored session). */
  readonly playbook?: Playbook;
  readonly stage?: { readonly id: string; readonly data?: Readonly<Record<string, unknown>> };
  /** The stage changed (persist it with the session). */
  readonly onStage?: (stage: { readonly id: string; readonly data?: Readonly<Record<string, unknown>> } | undefined) => void;
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

export class SessionHost {
  readonly id: string;
  readonly actor: SessionActorRef;
  readonly createdAt: number;
  readonly outputSampleRate: number;
  readonly #options: SessionHostOptions;
  readonly #logger: Logger;
  readonly #audio: AudioBinding;
  readonly #encoder: SessionEventEncoder;
  readonly #metrics: TurnMetricsTracker;
  #send: MessageSender | undefined;
  #onEnded: ((reason: string) => void) | undefined;
  #unrelayMotion: (() => void) | undefined;
  #closed = false;
  #closeReason = 'closed';
  #stage: string | undefined;

  constructor(options: SessionHostOptions) {
    this.#options = options;
    this.id = options.sessionId;
    this.#logger = options.logger.child({ session: options.sessionId });
    const clock = options.clock ?? realClock;
    this.createdAt = clock.now();
    this.outputSampleRate = options.outputSampleRate;
    const hooks = options.hooks;
    this.#metrics = new TurnMetricsTracker({ sessionId: this.id, now: () => clock.now() });
    // With a guard, text reaches the client only once it has been allowed (reply.done).
    this.#encoder = new SessionEventEncoder({ hideDeltas: hooks.guard !== undefined });
    this.#audio = new AudioBinding({
      outputSampleRate: options.outputSampleRate,
      vad: options.vad,
      logger: this.#logger,
      onError: (error) => this.#report(error),
      onFrame: (replyId) => this.#metrics.frame(replyId),
    });
    this.actor = createSession(
      {
        providers: options.providers,
        output: this.#audio.sink,
        clock,
        resumeToken: options.resumeToken,
        logger: this.#logger,
        ...(this.#audio.vadLogic === undefined ? {} : { vad: this.#audio.vadLogic }),
        recorder: this.#audio.recorder,
        ...(this.#audio.vadConfig === undefined ? {} : { prefixPaddingMs: this.#audio.vadConfig.prefixPaddingMs }),
        ...(options.turnDetector === undefined ? {} : { turnDetector: options.turnDetector }),
        ...(options.playbook === undefined ? {} : { playbook: options.playbook }),
        ...(options.motion === undefined ? {} : { motion: createMotionLinkActor({ ...options.motion, logger: this.#logger }) }),
        ...(options.tools === undefined ? {} : { tools: options.tools }),
        ...(options.language === undefined ? {} : { language: options.language }),
        ...(options.voice === undefined ? {} : { voice: options.voice }),
        ...(hooks.guard === undefined ? {} : { guard: hooks.guard }),
      },
      {
        ...(options.systemPrompt === undefined ? {} : { systemPrompt: options.systemPrompt }),
        ...(options.history === undefined ? {} : { history: options.history }),
        ...(options.session === undefined ? {} : { options: options.session }),
        ...(options.stage === undefined ? {} : { stage: options.stage }),
      },
    );
    this.#stage = options.stage?.id;
    this.#wire();
  }

  start(): this {
    this.actor.start();
    const link = this.#options.motion === undefined ? undefined : this.actor.system.get('motion');
    if (link !== undefined && !this.#closed) {
      this.#unrelayMotion = relayMotion(link, {
        onFeed: (message) => this.#emit(message.type === 'avatar.frames' ? { ...message, frames: [...message.frames] } : message),
        onError: (error, fatal) => {
          const code = error instanceof VoxError ? error.code : 'provider_unavailable';
          this.#logger.warn({ err: error, fatal }, 'motion link error');
          // The voice conversation goes on without the avatar: never fatal for the session.
          this.#emit({ type: 'error', code, message: `avatar: ${error.message}`, fatal: false });
          this.#hook('onError', { sessionId: this.id, code, message: error.message });
        },
      });
    }
    return this;
  }

  /** The public state path (`listening`, `thinking`, `interrupted.confirming`, `suspended`, …); '' before start. */
  get state(): string {
    return this.#encoder.current?.state ?? '';
  }

  /** The user's voice as the session has it: silent, speaking or paused. */
  /** The playbook's current stage (undefined without a playbook, or once it completed). */
  get stage(): string | undefined {
    return this.#stage;
  }

  get voice(): VoiceState {
    return this.#encoder.current?.voice ?? 'silent';
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
    return this.#audio.transport;
  }

  /** A client connection now speaks for this session. */
  /** The connection of the client: its messages go to `send`; `onEnded` is told when the session ends by itself (idle, an error). */
  attach(send: MessageSender, onEnded?: (reason: string) => void): void {
    this.#send = send;
    this.#onEnded = onEnded;
  }

  /** Routes audio both ways through `transport` (replacing any previous one). */
  setTransport(transport: AudioTransport): void {
    this.#audio.attach(transport);
  }

  /** The client's connection went away: the session waits for a resume (or its TTL). */
  detach(): void {
    this.#send = undefined;
    this.#onEnded = undefined;
    this.#audio.detach();
    if (!this.#closed) this.#input({ type: 'transport.lost' });
  }

  /** Resume the session with `token` (checked by the session itself, in constant time). True when it left `suspended`. */
  resume(token: string): boolean {
    if (this.#closed) return false;
    this.#input({ type: 'session.resume', token });
    return publicState(this.actor.getSnapshot().value).state !== 'suspended';
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
      this.#logger.debug({ event: event.type, state: this.state }, 'event ignored in this state');
    }
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
    actor.subscribe({
      next: (snapshot) => {
        for (const message of this.#encoder.state(publicState(snapshot.value))) this.#emit(message);
        if (snapshot.status === 'done' && !this.#closed) this.#finish();
      },
      error: (error) => {
        this.#logger.error({ err: error }, 'session actor failed');
        this.#emit({ type: 'error', code: 'internal', message: 'the session failed', fatal: true });
        this.#finish();
      },
    });
    actor.on('*', (event) => this.#onEvent(event));
  }

  /** One session event: the wire messages first, then metrics, hooks and persistence. */
  #onEvent(event: SessionEmitted): void {
    for (const message of this.#encoder.event(event)) this.#emit(message);
    const metrics = this.#metrics.observe(event);
    const sessionId = this.id;
    switch (event.type) {
      case 'session.closed':
        this.#closeReason = event.reason;
        break;
      case 'vad.speechStart':
        this.#hook('onSpeechStart', { sessionId, atMs: event.atMs });
        break;
      case 'vad.speechEnd':
        this.#hook('onSpeechEnd', { sessionId, durationMs: event.durationMs, voicedMs: event.voicedMs });
        break;
      case 'transcript.partial':
      case 'transcript.final':
        this.#hook('onTranscript', { sessionId, text: event.text, final: event.type === 'transcript.final' });
        break;
      case 'turn.start':
        this.#hook('onTurnStart', { sessionId, turnId: String(event.replyId), source: event.source });
        break;
      case 'session.idle':
        this.#hook('onIdle', { sessionId, prompts: event.prompts });
        break;
      case 'stage.change':
        this.#stageChanged(event);
        break;
      case 'stage.data':
        // Persisted with the stage (a completed playbook keeps no record of it).
        if (this.#stage !== undefined) this.#options.onStage?.({ id: this.#stage, data: event.stages });
        break;
      case 'reply.done':
        this.#hook('onReply', { sessionId, turnId: String(event.replyId), text: event.text, interrupted: event.interrupted });
        if (metrics !== undefined) {
          this.#emit(metricsTurnMessage(metrics));
          this.#hook('onTurnEnd', metrics);
        }
        this.#options.onHistory?.(this, this.history);
        break;
      case 'error':
        this.#hook('onError', { sessionId, code: wireErrorCode(event.code), message: event.message });
        break;
      default:
        break;
    }
  }

  /** Hooks (the server's and the stage definitions' own), non-blocking, and persistence of the stage. */
  #stageChanged(event: Extract<SessionEmitted, { type: 'stage.change' }>): void {
    const sessionId = this.id;
    const playbook = this.#options.playbook;
    const context = (stage: string): StageHookContext => ({
      stage,
      data: event.stages[stage],
      turns: 0,
      elapsedMs: 0,
      history: this.history,
      lastUserText: '',
      lastAssistantText: '',
      // Cloned here, so data that cannot be kept throws at the hook's call.
      setData: (data) => this.actor.send({ type: 'playbook.setData', stage, data: cloneStageData(stage, data) }),
    });
    const runStageHook = (name: 'onEnter' | 'onExit', stage: string): void => {
      const hook = playbook?.stages[stage]?.[name];
      if (hook === undefined) return;
      void Promise.resolve()
        .then(() => hook(context(stage)))
        .catch((error: unknown) => this.#options.onHookError(name === 'onEnter' ? 'onStageEnter' : 'onStageExit', error, sessionId));
    };
    if (event.from !== null && event.reason.kind !== 'resume') {
      this.#hook('onStageExit', { sessionId, stage: event.from });
      runStageHook('onExit', event.from);
    }
    if (event.from !== null) this.#hook('onTransition', { sessionId, from: event.from, to: event.to, reason: event.reason });
    if (event.to === null) this.#hook('onPlaybookComplete', { sessionId, from: event.from, reason: event.reason });
    else {
      this.#hook('onStageEnter', { sessionId, stage: event.to, data: event.data });
      runStageHook('onEnter', event.to);
    }
    this.#stage = event.to ?? undefined;
    this.#options.onStage?.(event.to === null ? undefined : { id: event.to, data: event.stages });
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unrelayMotion?.();
    this.#unrelayMotion = undefined;
    this.#audio.close();
    this.#options.onClosed(this);
    const ended = this.#onEnded;
    this.#onEnded = undefined;
    ended?.(this.#closeReason);
  }
}
