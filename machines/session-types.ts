/**
 * The session statechart's vocabulary: settings, input, context, the events it takes and the events
 * it emits, and small pure helpers. Kept apart from machines/session.ts so the machine file reads as
 * setup + states.
 */
import type { ActorRefFrom } from 'xstate';
import type { ChatMessage, PcmFloat, ToolCall, ToolSpec } from '../src/providers/types.js';
import { DEFAULT_HISTORY_LIMITS, type HistoryLimits, words } from '../src/session/history.js';
import { DEFAULT_REPLY_SETTINGS, type ErrorInfo, type ReplyParentEvent, type ReplySettings, type ToolResult, type replyMachine } from './reply.js';

/** Timing rules of a session. Defaults and their meaning: src/session/config.ts and docs/configuration.md. */
export interface SessionTimings {
  /** Speech during a reply must last this long before it cancels the reply. */
  readonly minInterruptionMs: number;
  /** Or the interim transcript must reach this many words (0 disables the word rule). */
  readonly minInterruptionWords: number;
  /** After a false interruption (speech too short), wait this long in silence before resuming playout. */
  readonly falseInterruptionTimeoutMs: number;
  /** How long a session whose transport dropped waits for `session.resume` before closing. */
  readonly sessionTtlMs: number;
}

export interface SessionSettings extends SessionTimings {
  readonly reply: ReplySettings;
  readonly history: HistoryLimits;
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = {
  minInterruptionMs: 400,
  minInterruptionWords: 0,
  falseInterruptionTimeoutMs: 1000,
  sessionTtlMs: 60_000,
  reply: DEFAULT_REPLY_SETTINGS,
  history: DEFAULT_HISTORY_LIMITS,
};

export interface SessionInput {
  readonly settings?: SessionSettings;
  readonly systemPrompt?: string;
  readonly history?: readonly ChatMessage[];
  readonly tools?: readonly ToolSpec[];
}

export type ReplyRef = ActorRefFrom<typeof replyMachine>;

/** What the `motion` child (the Motion Server link) receives. */
export type MotionChildCommand =
  | { type: 'motion.audio'; pcm: Int16Array; sampleRate: number; end: boolean }
  | { type: 'motion.interrupt' }
  | { type: 'motion.close' };

export interface SessionContext {
  readonly settings: SessionSettings;
  readonly systemPrompt: string;
  readonly tools: readonly ToolSpec[];
  readonly history: readonly ChatMessage[];
  /** Number of replies started; the id of the current one. */
  readonly turn: number;
  readonly reply: ReplyRef | undefined;
  /** The utterance being transcribed (or kept while the user goes on speaking). */
  readonly utterance: PcmFloat | undefined;
  /** Text typed while an utterance was being transcribed; it joins the same turn. */
  readonly queuedText: readonly string[];
  /** Speech that ended after such text was typed: transcribed next. */
  readonly laterUtterance: PcmFloat | undefined;
}

export type SessionEvent =
  | { type: 'vad.speechStart'; atMs: number }
  | { type: 'vad.speechEnd'; atMs: number; durationMs: number; audio: PcmFloat }
  | { type: 'vad.error'; error: ErrorInfo }
  | { type: 'stt.partial'; text: string }
  | { type: 'user.text'; text: string }
  | { type: 'user.interrupt' }
  | { type: 'transport.lost' }
  | { type: 'session.resume'; token: string }
  | { type: 'session.close'; reason?: string }
  | ReplyParentEvent;

/** What the session tells the outside world (server → client protocol, hooks, metrics). */
export type SessionEmitted =
  | { type: 'vad.speechStart'; atMs: number }
  | { type: 'vad.speechEnd'; atMs: number; durationMs: number }
  | { type: 'transcript.partial'; text: string }
  | { type: 'transcript.final'; text: string }
  | { type: 'turn.start'; replyId: number; source: 'voice' | 'text' }
  | { type: 'reply.delta'; replyId: number; text: string }
  | { type: 'reply.audioStart'; replyId: number; sampleRate: number }
  | { type: 'reply.done'; replyId: number; text: string; interrupted: boolean }
  | { type: 'reply.paused'; replyId: number }
  | { type: 'reply.resumed'; replyId: number }
  | { type: 'tools.start'; replyId: number; calls: readonly ToolCall[] }
  | { type: 'tools.end'; replyId: number; results: readonly ToolResult[] }
  | { type: 'error'; code: string; message: string; fatal: boolean }
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

export function wordCount(text: string): number {
  return words(text).length;
}

export function errorParams(error: unknown, fallback: string): { code: string; message: string } {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    const message = (error as { message?: unknown }).message;
    return { code: typeof code === 'string' ? code : fallback, message: typeof message === 'string' ? message : String(error) };
  }
  return { code: fallback, message: String(error) };
}

/**
 * The public name of a session state value: `listening.idle`, `speaking`, `interrupted.falseAlarm`,
 * `suspended`, `closed` (the internal `active` wrapper is not part of the name).
 */
export function stateName(value: unknown): string {
  const parts: string[] = [];
  let node: unknown = value;
  while (node !== undefined) {
    if (typeof node === 'string') {
      parts.push(node);
      break;
    }
    if (typeof node !== 'object' || node === null) break;
    const entries = Object.entries(node as Record<string, unknown>);
    const first = entries[0];
    if (first === undefined) break;
    parts.push(first[0]);
    node = first[1];
  }
  if (parts[0] === 'active') parts.shift();
  return parts.join('.');
}
