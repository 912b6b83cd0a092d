/**
 * Binds the pure session machine to real actors: providers, tools, the VAD, the playout towards
 * a transport, and the Motion Server link. The result is an ordinary XState actor.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type AnyActorLogic, createActor, fromCallback, fromPromise, type InspectionEvent, type Observer } from 'xstate';
import { replyMachine } from '../../machines/reply.js';
import { createPlaybookMachine, type PlaybookEvent, type PlaybookInput, STAGE_TOOL_NAME } from '../../machines/playbook.js';
import type { Playbook } from '../playbook/types.js';
import {
  type MotionChildCommand,
  type SessionActorRef,
  sessionMachine,
  type TurnDetectorActorInput,
  type TurnDetectorActorOutput,
  type VadChildCommand,
  type VadChildInput,
} from '../../machines/session.js';
import { type Clock, realClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ChatMessage, LlmProvider, Providers, Tool } from '../providers/types.js';
import { AudioRecorder } from '../audio/recorder.js';
import { clampProbability, endpointingDelayMs, type TurnDetector } from '../turn/detector.js';
import { LexicalTurnDetector } from '../turn/lexical.js';
import { createLlmActor, createToolsActor, createTtsActor, type Guard } from './actors.js';
import { resolveSessionSettings, type SessionOptions } from './config.js';
import { type AudioSink, createPlayoutLogic } from './playout.js';
import { createRecognizer } from './recognizer.js';

export interface SessionDependencies {
  readonly providers: Providers;
  /** Where the agent's audio goes. */
  readonly output: AudioSink;
  readonly tools?: readonly Tool[];
  readonly clock?: Clock;
  /** The `vad` child: inbound audio → vad.* events (src/session/audio-binding.ts). Default: none (text-only session). */
  readonly vad?: AnyActorLogic;
  /** The `motion` child: the Motion Server link machine (src/motion/link.ts). Default: none. */
  readonly motion?: AnyActorLogic;
  /**
   * The secret that `session.resume` must present; a function when it changes (the server issues a new
   * one at every resume). A function may return several: any of them resumes the session.
   */
  readonly resumeToken: string | (() => string | readonly string[]);
  readonly logger?: Logger;
  readonly language?: string;
  readonly voice?: string;
  /** Vetoes or rewrites a transcribed user turn, and each reply segment before it is spoken. */
  readonly guard?: Guard;
  /** The inbound audio the `vad` child writes (src/audio/recorder.ts): what the recognizer reads. Default: a fresh one (nothing heard). */
  readonly recorder?: AudioRecorder;
  /** Audio before an onset that belongs to the utterance (the VAD's prefixPaddingMs). Default 320. */
  readonly prefixPaddingMs?: number;
  /** Decides how likely the user has finished (docs/turn-detection.md). Default: LexicalTurnDetector. */
  readonly turnDetector?: TurnDetector;
  /** After the end of turn, how long the final transcript may take. Default 5000 ms (the session option `sttTimeoutMs`). */
  readonly sttTimeoutMs?: number;
  /** A playbook (definePlaybook) the session runs as its `playbook` child: stages, their prompts and tools, transitions. */
  readonly playbook?: Playbook;
  /**
   * Observes the session's actor system through XState's inspection API (every actor, event,
   * transition, action and snapshot; src/inspect/). Default: none, and then nothing is paid for it.
   */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export interface SessionSpec {
  readonly systemPrompt?: string;
  readonly history?: readonly ChatMessage[];
  readonly options?: SessionOptions;
  /** A restored session's playbook stage (and stage data) to resume in. */
  readonly stage?: { readonly id: string; readonly data?: Readonly<Record<string, unknown>> };
}

/** A fresh, unguessable resume token (256 bits, URL-safe). */
export function newResumeToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares two secrets in constant time (hashing first makes the lengths equal). */
export function secretsEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}

function validateProviders(providers: Providers): void {
  if (typeof providers !== 'object' || providers === null) throw new ConfigError('providers', 'must be an object with stt, llm and tts');
  if (typeof providers.stt?.transcribe !== 'function') throw new ConfigError('providers.stt', 'must implement transcribe(audio, options)');
  if (typeof providers.llm?.stream !== 'function') throw new ConfigError('providers.llm', 'must implement stream(request)');
  if (typeof providers.tts?.synthesize !== 'function') throw new ConfigError('providers.tts', 'must implement synthesize(text, options)');
}

const noVad = fromCallback<VadChildCommand, VadChildInput>(() => undefined);

const SUMMARY_PROMPT =
  'Summarize the conversation below for the assistant who continues it, in at most three sentences. Keep names, numbers, dates, times and what was agreed; leave out greetings and small talk.';

/** The `summarize` actor: a conversation, by the session's LLM, in a few sentences (no tools). */
function createSummarizer(llm: LlmProvider) {
  return fromPromise<string, { messages: readonly ChatMessage[] }>(async ({ input, signal }) => {
    const transcript = input.messages
      .filter((m) => (m.role === 'user' || m.role === 'assistant') && m.content.trim().length > 0)
      .map((m) => `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}`)
      .join('\n');
    if (transcript.length === 0) return '';
    let text = '';
    for await (const event of llm.stream({ messages: [{ role: 'system', content: SUMMARY_PROMPT }, { role: 'user', content: transcript }], signal })) {
      if (event.type === 'text') text += event.text;
    }
    return text.trim();
  });
}
const noPlaybook = fromCallback<PlaybookEvent, PlaybookInput>(() => undefined);

/** The playbook's tools, each once (a tool may serve several stages), and the stage tool when a transition needs it. */
function playbookTools(playbook: Playbook): Tool[] {
  const byName = new Map<string, Tool>();
  for (const tool of [...(playbook.globalTools ?? []), ...Object.values<{ tools?: readonly Tool[] }>(playbook.stages).flatMap((stage) => stage.tools ?? [])]) {
    if (!byName.has(tool.name)) byName.set(tool.name, tool);
  }
  if (playbook.transitions.some((t) => t.condition.type === 'llmDecision')) {
    byName.set(STAGE_TOOL_NAME, {
      name: STAGE_TOOL_NAME,
      description: 'Move the conversation to another stage.',
      parameters: { type: 'object', properties: { target: { type: 'string' } }, required: ['target'] },
      // The playbook takes the transition once this result is committed (machines/playbook.ts).
      execute: async (args) => ({ stage: (args as { target?: unknown } | null)?.target }),
    });
  }
  return [...byName.values()];
}
const noMotion = fromCallback<MotionChildCommand>(() => undefined);

export function createSessionLogic(deps: SessionDependencies) {
  validateProviders(deps.providers);
  const clock = deps.clock ?? realClock;
  // Every tool a reply may run: the session's, and the playbook's (global, each stage's, and the
  // stage tool of llmDecision transitions). Which of them a reply may call is its stage's business.
  const own = deps.tools ?? [];
  const tools = [...own, ...(deps.playbook === undefined ? [] : playbookTools(deps.playbook).filter((tool) => !own.some((t) => t.name === tool.name)))];
  const reply = replyMachine.provide({
    actors: {
      llm: createLlmActor(deps.providers.llm),
      tts: createTtsActor(deps.providers.tts, deps.voice, deps.guard),
      tools: createToolsActor(tools),
      playout: createPlayoutLogic({ sink: deps.output, clock, ...(deps.logger ? { logger: deps.logger } : {}) }),
    },
  });
  const currentToken = deps.resumeToken;
  const token = typeof currentToken === 'function' ? currentToken : () => currentToken;
  const recognizer = createRecognizer({
    stt: deps.providers.stt,
    recorder: deps.recorder ?? new AudioRecorder(),
    prefixPaddingMs: deps.prefixPaddingMs ?? 320,
    sttTimeoutMs: deps.sttTimeoutMs ?? 5000,
    clock,
    ...(deps.language === undefined ? {} : { language: deps.language }),
    ...(deps.guard === undefined ? {} : { guard: deps.guard }),
  });
  const detector = deps.turnDetector ?? new LexicalTurnDetector();
  const turnDetector = fromPromise<TurnDetectorActorOutput, TurnDetectorActorInput>(async ({ input, signal }) => {
    const probability = clampProbability(
      await detector.endOfTurnProbability({ text: input.text, audio: recognizer.audioOf(input.utterance), history: input.history, signal }),
    );
    return { probability, delayMs: endpointingDelayMs(probability, input) };
  });
  return sessionMachine.provide({
    actors: {
      vad: (deps.vad ?? noVad) as typeof noVad,
      stt: recognizer.logic,
      turnDetector,
      summarize: createSummarizer(deps.providers.llm),
      ...(deps.playbook === undefined ? {} : { playbook: createPlaybookMachine(deps.playbook, { now: () => clock.now() }) as unknown as typeof noPlaybook }),
      reply,
      motion: (deps.motion ?? noMotion) as typeof noMotion,
    },
    actions: {
      clearOutput: () => {
        deps.output.clear?.();
      },
    },
    guards: {
      resumeTokenValid: ({ event }) => {
        if (event.type !== 'session.resume') return false;
        const accepted = token();
        // Every candidate is compared (no early exit), so the time taken does not tell which matched.
        let valid = false;
        for (const candidate of typeof accepted === 'string' ? [accepted] : accepted) valid = secretsEqual(event.token, candidate) || valid;
        return valid;
      },
    },
  });
}

export type SessionLogic = ReturnType<typeof createSessionLogic>;

/** Creates (does not start) a session actor. */
export function createSession(deps: SessionDependencies, spec: SessionSpec = {}): SessionActorRef {
  const settings = resolveSessionSettings(spec.options);
  const logic = createSessionLogic({ ...deps, sttTimeoutMs: deps.sttTimeoutMs ?? settings.sttTimeoutMs });
  const input = {
    settings,
    streamingStt: typeof deps.providers.stt.stream === 'function',
    ...(deps.playbook === undefined ? {} : { playbook: spec.stage === undefined ? {} : { stage: spec.stage.id, ...(spec.stage.data === undefined ? {} : { data: spec.stage.data }) } }),
    tools: (deps.tools ?? []).map(({ name, description, parameters }) => ({ name, description, parameters })),
    ...(spec.systemPrompt === undefined ? {} : { systemPrompt: spec.systemPrompt }),
    ...(spec.history === undefined ? {} : { history: spec.history }),
  };
  // `systemId` lets the tools actor check the live stage of a playbook before a call runs.
  return createActor(logic, {
    input,
    clock: deps.clock ?? realClock,
    systemId: 'session',
    ...(deps.inspect === undefined ? {} : { inspect: deps.inspect }),
  }) as unknown as SessionActorRef;
}
