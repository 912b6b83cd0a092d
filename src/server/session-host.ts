/**
 * One live voice session on the server. It composes, and does little itself:
 * - the session actor, built by createSession (src/session/session.ts);
 * - its audio path, an AudioBinding (src/session/audio-binding.ts): transport ⇄ VAD / playout;
 * - the avatar relay, when a Motion Server link is configured (src/session/motion.ts);
 * - the wire codec (src/protocol/session-events.ts): session events and states → client messages;
 * - turn metrics (./turn-metrics.ts) and the application hooks;
 * - observability (src/observability): Prometheus series, OpenTelemetry spans of each turn, and a
 *   logger whose lines carry the session, the turn in progress and the session's state.
 * A host outlives its connections: a dropped socket suspends the session, a resume attaches a new one.
 */
import type { InspectionEvent, Observer } from 'xstate';
import { publicState, type SessionActorRef, type SessionEmitted, type SessionEvent, type VoiceState } from '../../machines/session.js';
import { type Clock, realClock } from '../clock.js';
import { ProviderError, VoxError } from '../errors.js';
import { createMotionLinkActor, type MotionLinkOptions } from '../motion/link.js';
import { instrumentProviders } from '../observability/instrument.js';
import { type Logger, sessionLogger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { tracingRegistered, TurnTracer } from '../observability/tracing.js';
import type { ServerMessage } from '../protocol/messages.js';
import { clientErrorMessage } from '../protocol/error-messages.js';
import { SessionEventEncoder, wireErrorCode } from '../protocol/session-events.js';
import type { ChatMessage, Providers, Tool } from '../providers/types.js';
import { applyGuard } from '../session/actors.js';
import { AudioBinding } from '../session/audio-binding.js';
import type { SessionOptions } from '../session/config.js';
import { relayMotion } from '../session/motion.js';
import { createSession, newResumeToken } from '../session/session.js';
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
  /** A token the client may still hold from before its last resume (NewHost.heldResumeToken). */
  readonly heldResumeToken?: string;
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
  /** The client's connection dropped: the session waits for a resume (persist it for a resume elsewhere). */
  readonly onSuspended?: (host: SessionHost) => void;
  /** A resume issued `token` (persist its hash; never log it); `held` is the one the client resumed with, valid until `token` is used. */
  readonly onTokenRotated?: (host: SessionHost, token: string, held: string) => void;
  /** Observes the session's actor system (the server's inspector, src/inspect/). Default: none. */
  readonly inspect?: Observer<InspectionEvent>;
  /** The Prometheus series this session counts into (src/observability/metrics.ts). */
  readonly metrics?: Metrics;
  /** Spans may carry transcripts, reply text, tool arguments and results. Default false. */
  readonly traceContent?: boolean;
}

/** Wall-clock ms with sub-ms precision: span times, and the provider-call records they are made from. */
const wallNow = (): number => performance.timeOrigin + performance.now();

export class SessionHost {
  readonly id: string;
  readonly actor: SessionActorRef;
  readonly createdAt: number;
  readonly outputSampleRate: number;
  readonly #options: SessionHostOptions;
  readonly #logger: Logger;
  readonly #audio: AudioBinding;
  readonly #encoder: SessionEventEncoder;
  readonly #timings: TurnMetricsTracker;
  /** Spans of each turn; undefined when no OpenTelemetry provider was registered when the session began. */
  readonly #tracer: TurnTracer | undefined;
  #send: MessageSender | undefined;
  #onEnded: ((reason: string) => void) | undefined;
  #unrelayMotion: (() => void) | undefined;
  #started = false;
  #closed = false;
  #closeReason = 'closed';
  #stage: string | undefined;
  /** The secret the next `session.resume` must present; replaced at every resume. */
  #resumeToken: string;
  /** The token the client last resumed with: it may not have received `#resumeToken` (see `resume`). */
  #heldToken: string | undefined;
  /** The reply in progress (the `turn` of log lines), from its turn.start to its reply.done. */
  #turn: number | undefined;

  constructor(options: SessionHostOptions) {
    this.#options = options;
    this.id = options.sessionId;
    this.#resumeToken = options.resumeToken;
    this.#heldToken = options.heldResumeToken;
    this.#logger = sessionLogger(options.logger, options.sessionId, () => ({ turn: this.#turn, state: this.#stateForLog() }));
    const clock = options.clock ?? realClock;
    this.createdAt = clock.now();
    this.outputSampleRate = options.outputSampleRate;
    const hooks = options.hooks;
    this.#timings = new TurnMetricsTracker({ sessionId: this.id, now: () => clock.now() });
    const tracer = tracingRegistered() ? new TurnTracer({ sessionId: this.id, traceContent: options.traceContent === true, now: wallNow }) : undefined;
    this.#tracer = tracer;
    const metrics = options.metrics;
    // Provider calls are watched only when something reads them.
    const providers =
      metrics === undefined && tracer === undefined
        ? options.providers
        : instrumentProviders(
            options.providers,
            {
              started: (call) => tracer?.callStarted(call),
              ended: (call) => {
                metrics?.providerCall(call);
                tracer?.callEnded(call);
              },
            },
            wallNow,
          );
    // With a guard, text reaches the client only once it has been allowed (reply.done).
    this.#encoder = new SessionEventEncoder({ hideDeltas: hooks.guard !== undefined });
    this.#audio = new AudioBinding({
      outputSampleRate: options.outputSampleRate,
      vad: options.vad,
      logger: this.#logger,
      onError: (error) => this.#report(error),
      onFrame: (replyId) => {
        this.#timings.frame(replyId);
        tracer?.frame(replyId);
      },
    });
    this.actor = createSession(
      {
        providers,
        output: this.#audio.sink,
        clock,
        resumeToken: () => (this.#heldToken === undefined ? this.#resumeToken : [this.#resumeToken, this.#heldToken]),
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
        ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
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
    if (this.#started) return this;
    this.#started = true;
    this.#options.metrics?.sessionStarted();
    this.actor.start();
    this.#logger.info('session started');
    const link = this.#options.motion === undefined ? undefined : this.actor.system.get('motion');
    if (link !== undefined && !this.#closed) {
      this.#unrelayMotion = relayMotion(link, {
        onFeed: (message) => this.#emit(message.type === 'avatar.frames' ? { ...message, frames: [...message.frames] } : message),
        onError: (error, fatal) => {
          const code = error instanceof VoxError ? error.code : 'provider_unavailable';
          this.#logger.warn({ err: error, fatal }, 'motion link error');
          // The voice conversation goes on without the avatar: never fatal for the session. The
          // client hears which part failed, not the Motion Server's own words (they stay in the log).
          const message = `avatar: ${clientErrorMessage(code, error.message, 'avatar')}`;
          this.#emit({ type: 'error', code, message, fatal: false });
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

  /**
   * The state a log line carries: the one last announced, or, for lines written while the actor
   * starts (its children log before the first snapshot is announced), the actor's own.
   */
  #stateForLog(): string | undefined {
    // Read through `?.`: a line may be written while the constructor is still making these.
    const announced = this.#encoder?.current?.state;
    if (announced !== undefined) return announced;
    const snapshot = (this.actor as SessionActorRef | undefined)?.getSnapshot();
    return snapshot === undefined ? undefined : publicState(snapshot.value).state;
  }

  /** The session's logger: `session`, and the turn in progress and the state, on every line. */
  get logger(): Logger {
    return this.#logger;
  }

  /** The playbook's current stage (undefined without a playbook, or once it completed). */
  get stage(): string | undefined {
    return this.#stage;
  }

  /** The user's voice as the session has it: silent, speaking or paused. */
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
    if (this.#closed) return;
    this.#input({ type: 'transport.lost' });
    this.#options.onSuspended?.(this);
  }

  /**
   * Resume the session with `token` (checked by the session itself, in constant time). When it left
   * `suspended`, a new token is issued and returned (for `session.resumed`); undefined when refused.
   *
   * Tokens rotate without locking the client out: the answer carrying the new token can be lost with
   * its socket (a network that drops again right after reconnecting), and the client then holds only
   * the token it sent. So the session accepts two: the newest, and the one the client last resumed
   * with. Resuming with the newest retires the older one; every token before those is dead.
   */
  resume(token: string): string | undefined {
    // Only a suspended session can be resumed (one taken over by another connection meanwhile is not).
    if (this.#closed || this.connected || publicState(this.actor.getSnapshot().value).state !== 'suspended') return undefined;
    this.#input({ type: 'session.resume', token });
    if (publicState(this.actor.getSnapshot().value).state === 'suspended') return undefined;
    // The client surely holds what it just sent; whether it gets the new one is not known yet.
    this.#heldToken = token;
    this.#resumeToken = newResumeToken();
    this.#options.onTokenRotated?.(this, this.#resumeToken, token);
    return this.#resumeToken;
  }

  async userText(text: string): Promise<void> {
    const controller = new AbortController();
    const guarded = await applyGuard(this.#options.hooks.guard, { kind: 'user', text }, controller.signal);
    if (guarded.trim().length === 0 || this.#closed) return;
    this.#tracer?.typed(guarded);
    this.#input({ type: 'user.text', text: guarded });
  }

  interrupt(): void {
    if (!this.#closed) this.#input({ type: 'user.interrupt' });
  }

  close(reason = 'closed'): void {
    if (!this.#closed) this.#input({ type: 'session.close', reason });
  }

  /**
   * The session was resumed on another node sharing the store, which holds it now: a client still
   * connected here hears `session_moved` (fatal), and this copy ends (reason `session_moved`).
   */
  handOver(): void {
    if (this.#closed) return;
    this.#emit({ type: 'error', code: 'session_moved', message: 'the session was resumed on another server', fatal: true });
    this.close('session_moved');
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
    this.#logger.warn({ err: error, code }, 'session error');
    // The client gets a generic message for server-side failures; the hook and the log keep the detail.
    this.#emit({ type: 'error', code, message: clientErrorMessage(code, message, error instanceof ProviderError ? error.provider : undefined), fatal: false });
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
        for (const message of this.#encoder.state(publicState(snapshot.value))) {
          if (message.type === 'session.state') this.#logger.debug({ voice: message.voice, previous: message.previous }, 'state changed');
          this.#emit(message);
        }
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

  /** One session event: the wire messages first, then metrics, traces, hooks and persistence. */
  #onEvent(event: SessionEmitted): void {
    for (const message of this.#encoder.event(event)) this.#emit(message);
    const metrics = this.#timings.observe(event);
    this.#options.metrics?.sessionEvent(event);
    this.#tracer?.event(event);
    const sessionId = this.id;
    switch (event.type) {
      case 'session.closed':
        this.#closeReason = event.reason;
        this.#logger.info({ reason: event.reason }, 'session closed');
        break;
      case 'session.resumed':
        this.#logger.info('session resumed');
        break;
      case 'session.resumeRefused':
        this.#logger.warn('session resume refused');
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
        this.#turn = event.replyId;
        this.#logger.debug({ source: event.source }, 'turn started');
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
          if (metrics.userStoppedToFirstAudioMs !== undefined) this.#options.metrics?.turnLatency(metrics.userStoppedToFirstAudioMs);
        }
        if (this.#turn === event.replyId) {
          // The line carries the turn and session already.
          const { sessionId: _session, turnId: _turn, interrupted: _interrupted, ...timings } = metrics ?? { sessionId, turnId: '', interrupted: false };
          this.#logger.info({ interrupted: event.interrupted, ...timings }, 'turn ended');
          this.#turn = undefined;
        }
        this.#options.onHistory?.(this, this.history);
        break;
      case 'tools.end':
        // The client's tool.end hides a tool's thrown message (src/protocol/error-messages.ts): the log keeps it.
        for (const result of event.results) if (!result.ok) this.#logger.warn({ tool: result.name, callId: result.callId, result: result.content }, 'tool call failed');
        break;
      case 'error':
        this.#logger.warn({ code: event.code, fatal: event.fatal, message: event.message, ...(event.provider === undefined ? {} : { provider: event.provider }) }, 'session error');
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
    if (this.#started) this.#options.metrics?.sessionEnded();
    this.#unrelayMotion?.();
    this.#unrelayMotion = undefined;
    this.#audio.close();
    this.#options.onClosed(this);
    const ended = this.#onEnded;
    this.#onEnded = undefined;
    ended?.(this.#closeReason);
  }
}
