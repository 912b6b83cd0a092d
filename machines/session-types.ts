/**
 * The session statechart's vocabulary: settings, input, context, the events it takes and the events
 * it emits, and small pure helpers. Kept apart from machines/session.ts so the machine file reads as
 * setup + states. Types only from src/ (machines/ imports nothing with I/O).
 */
import type { ChatMessage, PcmFloat, ToolCall, ToolSpec } from '../src/providers/types.js';
import { DEFAULT_HISTORY_LIMITS, type HistoryLimits } from './history.js';
import { DEFAULT_REPLY_SETTINGS, type ErrorInfo, type ReplyParentEvent, type ReplySettings, type ToolResult } from './reply.js';
import { DEFAULT_BACKCHANNEL_WORDS } from './words.js';
import type { PlaybookInput, PlaybookParentEvent, StageDataMap, StageView } from './playbook.js';
import type { StageChangeReason } from '../src/playbook/types.js';

/** Turn-taking rules of a session. Defaults and their meaning: src/session/config.ts and docs/configuration.md. */
export interface SessionTimings {
  /**
   * Voiced speech (VAD windows, summed across pauses shorter than the end of turn) an interruption
   * needs before it cancels the reply. Wall time does not count: a spoken "yeah" is ~420 ms voiced.
   */
  readonly minInterruptionMs: number;
  /** Or the interim transcript must reach this many words that are not backchannels (0 disables the word rule). */
  readonly minInterruptionWords: number;
  /** Listener feedback that never counts as words of an interruption ("yeah", "uh-huh", "got it", …). */
  readonly backchannelWords: readonly string[];
  /** An unconfirmed interruption whose voice stays paused this long (from the pause) is false: playout resumes. */
  readonly falseInterruptionTimeoutMs: number;
  /** How long a session whose transport dropped waits for `session.resume` before closing. */
  readonly sessionTtlMs: number;
  /** The end of turn after a turn that reads complete (end-of-turn probability 1): ms of silence from the audio edge. */
  readonly minEndpointingMs: number;
  /** … after one that reads unfinished (probability 0); and the longest the decision waits for recognizer text. */
  readonly maxEndpointingMs: number;
  /** Start the reply speculatively while the end of turn is being decided (see docs/turn-detection.md). */
  readonly preemptive: boolean;
  /** Listening with no speech and no text this long emits `session.idle` (0 = never). */
  readonly userIdleTimeoutMs: number;
  /** How many times an idle user is prompted (through the LLM) before the session closes with reason `idle`. */
  readonly maxIdlePrompts: number;
  /** The instruction the LLM gets (as a system message) for an idle prompt. */
  readonly idlePrompt: string;
  /** After the end of turn, how long the recognizer may take for the final transcript (src/session/recognizer.ts). */
  readonly sttTimeoutMs: number;
}

export interface SessionSettings extends SessionTimings {
  readonly reply: ReplySettings;
  readonly history: HistoryLimits;
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = {
  minInterruptionMs: 600,
  minInterruptionWords: 0,
  backchannelWords: DEFAULT_BACKCHANNEL_WORDS,
  falseInterruptionTimeoutMs: 600,
  sessionTtlMs: 60_000,
  minEndpointingMs: 200,
  maxEndpointingMs: 1500,
  preemptive: true,
  userIdleTimeoutMs: 0,
  maxIdlePrompts: 1,
  idlePrompt: 'The user has said nothing for a while. In one short sentence, ask whether they are still there.',
  sttTimeoutMs: 5000,
  reply: DEFAULT_REPLY_SETTINGS,
  history: DEFAULT_HISTORY_LIMITS,
};

export interface SessionInput {
  readonly settings?: SessionSettings;
  readonly systemPrompt?: string;
  readonly history?: readonly ChatMessage[];
  readonly tools?: readonly ToolSpec[];
  /** The recognizer streams (partials while the user speaks); a batch one has text only after the turn. Default false. */
  readonly streamingStt?: boolean;
  /** Run the `playbook` child (src/session provides it), resuming in this stage when given. */
  readonly playbook?: PlaybookInput;
}

/** What the `stt` child (the recognizer, src/session/recognizer.ts) receives. Utterances are numbered by the machine. */
export type RecognizerCommand =
  /** Recognize a new utterance whose onset was at `atMs` (audio-stream time; the recognizer adds the prefix padding). */
  | { type: 'stt.open'; utterance: number; atMs: number }
  /** The user paused inside the utterance (a hint for recognizers that finish segments on silence). */
  | { type: 'stt.pause'; utterance: number }
  /** The turn ended: no more audio; send `stt.final`. */
  | { type: 'stt.finish'; utterance: number }
  /** Forget the utterance (all open ones when no id is given). */
  | { type: 'stt.discard'; utterance?: number };

export type RecognizerInput = Record<string, never>;

/** What the recognizer sends back. */
export type RecognizerEvent =
  /** The utterance's text so far; `stable` when it is final segments only; `atMs` the audio-stream time it was sent at. */
  | { type: 'stt.partial'; utterance: number; text: string; stable: boolean; atMs: number }
  | { type: 'stt.final'; utterance: number; text: string }
  | { type: 'stt.failed'; utterance: number; error: ErrorInfo }
  /** Not fatal: e.g. the stream failed and batch transcription takes over. */
  | { type: 'stt.warning'; utterance: number; error: ErrorInfo };

/** The turn detector actor's input (src/session binds a TurnDetector to it) and output. */
export interface TurnDetectorActorInput {
  readonly utterance: number;
  readonly text: string;
  readonly history: readonly ChatMessage[];
  readonly minEndpointingMs: number;
  readonly maxEndpointingMs: number;
}
export interface TurnDetectorActorOutput {
  readonly probability: number;
  /** Silence from the audio edge after which the turn ends. */
  readonly delayMs: number;
}

/** What the `motion` child (the Motion Server link) receives. */
export type MotionChildCommand =
  | { type: 'motion.audio'; pcm: Int16Array; sampleRate: number; end: boolean }
  | { type: 'motion.interrupt' }
  | { type: 'motion.close' };

/** What the `vad` child receives: forget the utterance in progress (the transport it came from is gone). */
export type VadChildCommand = { type: 'vad.reset' };

/** The input the session gives its `vad` child: voiced durations it must report (`vad.voiced`). */
export interface VadChildInput {
  readonly voicedMarksMs: readonly number[];
}

export interface TurnPart {
  readonly text: string;
  readonly typed: boolean;
  /** Spoken: the utterance whose final transcript this is (its text is '' until the final arrives). */
  readonly utterance?: number;
}

/**
 * The session's context. It has at most 19 top-level keys, on purpose: XState's assign copies the
 * context with Object.assign onto {}, and V8 turns an object built that way with more than 19 keys
 * into a slow dictionary-mode object (every read a hash lookup). Related fields are grouped.
 */
export interface SessionContext {
  readonly settings: SessionSettings;
  /** What the session was created with: the system prompt, the tool specs, whether the STT streams. */
  readonly setup: { readonly systemPrompt: string; readonly tools: readonly ToolSpec[]; readonly streamingStt: boolean };
  readonly history: readonly ChatMessage[];
  /** Number of replies started; the id of the current one. */
  readonly turn: number;
  /**
   * The current reply's played (heard) text and whether its audio has started; the voiced duration
   * of the user's current utterance, as the VAD last reported it (for interruptions).
   */
  readonly replyProgress: { readonly heard: string; readonly audioStarted: boolean; readonly voicedMs: number };
  /** Utterances opened so far; `open` is the one the recognizer is hearing (onset → end of turn). */
  readonly utterances: number;
  readonly open: number | undefined;
  /** The open utterance had confirmed speech (vad.speechStart), not only an onset. */
  readonly spoke: boolean;
  /** The open utterance's text so far, and whether the recognizer said anything yet. */
  readonly text: string;
  readonly recognized: boolean;
  /**
   * Audio-stream times: the end of the user's last voiced window (`edgeMs`), the latest time an
   * event told (`audioMs`), the time at which the turn ends unless the user resumes
   * (`endpointAtMs`), and the end-of-turn probability that came from.
   */
  readonly endpoint: { readonly edgeMs: number; readonly audioMs: number; readonly endpointAtMs: number; readonly endProbability: number };
  /** Utterances whose turn ended and whose final transcript is awaited, in order. */
  readonly awaiting: readonly number[];
  /**
   * What the user said (final transcripts) and typed in this turn so far, in order: a turn may span
   * utterances, and text typed while one is transcribed joins it.
   */
  readonly turnParts: readonly TurnPart[];
  /** The text a speculative reply was started on (in `replying.preemptive`). */
  readonly speculation: string | undefined;
  /** Idle prompts since the user last spoke or typed; the system instruction of the reply being started for one. */
  readonly idle: { readonly prompts: number; readonly nudge: string | undefined };
  /** The playbook's child input (undefined: no playbook) and its current stage. */
  readonly playbook: PlaybookInput | undefined;
  readonly stage: StageView | undefined;
  /**
   * The running stage: a greeting waiting to be spoken (`say`) and the one the reply being started
   * speaks (`replySay`); where the stage's conversation starts in the history (`stageFrom`: a
   * `reset` stage's replies see only that part); a `summarize` stage's summary of what came before
   * (undefined until the LLM made it); user turns sent to the playbook whose check has not come
   * back (`pendingChecks`: the reply waits for all of them).
   */
  readonly stageRun: {
    readonly say: string | undefined;
    readonly replySay: string | undefined;
    readonly stageFrom: number;
    readonly summary: string | undefined;
    readonly pendingChecks: number;
  };
}

/**
 * What the VAD reports, in audio-stream time (`atMs`): a provisional onset (first window ≥ threshold)
 * that is confirmed (`speechStart`, after minSpeechMs) or cancelled; short pauses and resumptions
 * inside an utterance; voiced-duration marks; the end of the turn after minSilenceMs of silence.
 */
export type VadChildEvent =
  | { type: 'vad.onset'; atMs: number }
  | { type: 'vad.onsetCancelled'; atMs: number }
  | { type: 'vad.speechStart'; atMs: number; voicedMs: number }
  | { type: 'vad.speechPause'; atMs: number; voicedMs: number; silenceMs: number }
  | { type: 'vad.speechResume'; atMs: number; voicedMs: number }
  | { type: 'vad.voiced'; atMs: number; voicedMs: number }
  | { type: 'vad.speechEnd'; atMs: number; durationMs: number; voicedMs: number; silenceMs: number; audio: PcmFloat }
  | { type: 'vad.error'; error: ErrorInfo };

/** Events the session's regions raise for one another: the end-of-turn decision and its candidates. */
export type EndOfTurnEvent =
  /** The detector has set the end-of-turn timer on `text` (a speculative reply may start on it). */
  | { type: 'eot.candidate'; utterance: number; text: string }
  /** The user resumed or the text changed: the candidate is gone. */
  | { type: 'eot.cancelled'; utterance: number }
  /** The turn has ended: `text` is what the decision was made on. */
  | { type: 'eot.decided'; utterance: number; text: string };

export type SessionEvent =
  | VadChildEvent
  | PlaybookParentEvent
  /** A stage hook or tool replaces its stage's data (forwarded to the playbook). */
  | { type: 'playbook.setData'; stage: string; data: unknown }
  /** The playbook checked the transitions after a user turn (the stage may have changed). */
  | { type: 'playbook.checked' }
  /** The summary of a `summarize` stage's earlier conversation is ready (the `summarize` child). */
  | { type: 'xstate.done.actor.summarize'; output: string }
  | { type: 'xstate.error.actor.summarize'; error: unknown }
  /** One tool call of a reply ended (sent by the tools actor as it happens). */
  | { type: 'tools.callEnded'; replyId: number; result: ToolResult }
  | RecognizerEvent
  | EndOfTurnEvent
  | { type: 'user.text'; text: string }
  | { type: 'user.interrupt' }
  | { type: 'transport.lost' }
  | { type: 'session.resume'; token: string }
  | { type: 'session.close'; reason?: string }
  | ReplyParentEvent;

/** What the session tells the outside world (server → client protocol, hooks, metrics). */
export type SessionEmitted =
  | { type: 'vad.speechStart'; atMs: number }
  | { type: 'vad.speechEnd'; atMs: number; durationMs: number; voicedMs: number }
  | { type: 'transcript.partial'; text: string }
  | { type: 'transcript.final'; text: string }
  | { type: 'turn.start'; replyId: number; source: 'voice' | 'text' | 'idle' | 'stage' }
  /**
   * The end-of-turn decision: `edgeMs` the end of the user's last voiced window (audio-stream time),
   * `endpointingMs` the silence after it when the turn was decided, `by` what decided it.
   */
  | { type: 'turn.endpoint'; utterance: number; edgeMs: number; endpointingMs: number; probability: number | undefined; by: 'detector' | 'silence' | 'timeout' }
  /** A speculative reply: started on the text of a candidate end of turn, then used or discarded. */
  | { type: 'reply.preemptive'; replyId: number; outcome: 'started' | 'used' | 'discarded' }
  | { type: 'session.idle'; prompts: number }
  /** The playbook's stage changed (`to` null: the playbook completed). */
  /** `data`: the new stage's; `stages`: every entered stage's (what the session record keeps). */
  | { type: 'stage.change'; from: string | null; to: string | null; reason: StageChangeReason; data: unknown; stages: StageDataMap }
  /** A hook or tool replaced a stage's data (not sent on the wire). */
  | { type: 'stage.data'; stage: string; data: unknown; stages: StageDataMap }
  | { type: 'reply.delta'; replyId: number; text: string }
  | { type: 'reply.audioStart'; replyId: number; sampleRate: number }
  | { type: 'reply.done'; replyId: number; text: string; interrupted: boolean }
  | { type: 'reply.paused'; replyId: number }
  | { type: 'reply.resumed'; replyId: number }
  /** An interruption that was not confirmed (a backchannel, a cough): the reply went on; nothing was recorded. */
  | { type: 'interruption.false'; replyId: number; voicedMs: number }
  | { type: 'interruption.confirmed'; replyId: number; voicedMs: number; by: 'voice' | 'words' | 'client' | 'text' }
  | { type: 'tools.start'; replyId: number; calls: readonly ToolCall[] }
  | { type: 'tools.end'; replyId: number; results: readonly ToolResult[] }
  | { type: 'error'; code: string; message: string; fatal: boolean; provider?: string }
  | { type: 'session.resumed' }
  | { type: 'session.resumeRefused' }
  | { type: 'session.closed'; reason: string };

export function concatAudio(first: PcmFloat | undefined, second: PcmFloat): PcmFloat {
  if (first === undefined || first.samples.length === 0) return second;
  const samples = new Float32Array(first.samples.length + second.samples.length);
  samples.set(first.samples, 0);
  samples.set(second.samples, first.samples.length);
  return { samples, sampleRate: second.sampleRate };
}

export function errorParams(error: unknown, fallback: string): { code: string; message: string; provider?: string } {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    const message = (error as { message?: unknown }).message;
    const provider = (error as { provider?: unknown }).provider;
    return {
      code: typeof code === 'string' ? code : fallback,
      message: typeof message === 'string' ? message : String(error),
      ...(typeof provider === 'string' ? { provider } : {}),
    };
  }
  return { code: fallback, message: String(error) };
}

/** The user's voice as the `voice` region has it. */
export type VoiceState = 'silent' | 'speaking' | 'paused';

export interface PublicState {
  /** The turn region's path (`listening`, `transcribing`, `thinking`, `speaking`, `interrupted.confirming`, …), or `suspended` / `closed`. */
  readonly state: string;
  readonly voice: VoiceState;
}

function path(node: unknown): string[] {
  const parts: string[] = [];
  while (node !== undefined) {
    if (typeof node === 'string') {
      parts.push(node);
      break;
    }
    if (typeof node !== 'object' || node === null) break;
    const first = Object.entries(node as Record<string, unknown>)[0];
    if (first === undefined) break;
    parts.push(first[0]);
    node = first[1];
  }
  return parts;
}

/**
 * The public names of a session snapshot value: the turn region's path without the internal
 * `replying` wrapper (`thinking`, `interrupted.paused`, `transcribing`), `suspended` while the
 * connection region is, `closed` at the end; and the voice region's state.
 */
export function publicState(value: unknown): PublicState {
  if (value === 'closed') return { state: 'closed', voice: 'silent' };
  const active = (value as { active?: Record<string, unknown> } | undefined)?.active;
  if (typeof active !== 'object' || active === null) return { state: path(value).join('.'), voice: 'silent' };
  const voice = (typeof active['voice'] === 'string' ? active['voice'] : 'silent') as VoiceState;
  if (active['connection'] === 'suspended') return { state: 'suspended', voice };
  const turn = path(active['turn']);
  // A speculative reply is invisible: nothing of it leaves until it is committed.
  if (turn[0] === 'replying' && turn[1] === 'preemptive') return { state: 'listening', voice };
  if (turn[0] === 'replying') turn.shift();
  // The playbook checks its transitions before the reply: the agent is thinking.
  if (turn[0] === 'routing') return { state: 'thinking', voice };
  // Only the interruption's sub-states are public; transcribing's are bookkeeping.
  return { state: turn[0] === 'interrupted' ? turn.join('.') : (turn[0] ?? ''), voice };
}

/** The public state name alone (see {@link publicState}). */
export function stateName(value: unknown): string {
  return publicState(value).state;
}
