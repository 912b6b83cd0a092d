/**
 * Transition pieces the session statechart (./session.ts) uses in several states: how a reply is
 * cut, resumed, ended and started. Plain config objects naming the machine's guards and actions, so
 * the states read as one sentence each.
 */
import { and, stateIn } from 'xstate';
import { errorParams, type SessionEvent } from './session-types.js';

export const LISTENING = '#session.active.turn.listening';
export const TRANSCRIBING = '#session.active.turn.transcribing';
export const REPLYING = '#session.active.turn.replying';
export const ROUTING = '#session.active.turn.routing';
export const INTERRUPTED = '#session.active.turn.replying.interrupted';
const THINKING = '#session.active.turn.replying.thinking';
const SPEAKING = '#session.active.turn.replying.speaking';
const CONFIRMING = '#session.active.turn.replying.interrupted.confirming';
export type Cause = 'voice' | 'words' | 'client' | 'text';

/** Cut the reply to what was heard (the interruption is confirmed, the user typed, the client asked). */
export const cancelReply = (by: Cause) =>
  [{ type: 'emitConfirmed', params: { by } }, 'emitCancelled', 'recordHeardText', 'clearOutput', 'interruptMotion'] as const;

/** Confirmed by the user's voice: the user is speaking, so the next turn is being listened to. */
export const CUT_BY_VOICE = { target: LISTENING, actions: cancelReply('voice') };

/** Speech that might interrupt: it pauses the output at once (a confirmed onset or a resumption). */
export const SPEECH_DURING_REPLY = [
  { guard: { type: 'voicedEnough', params: ({ event }: { event: { voicedMs: number } }) => ({ voicedMs: event.voicedMs }) }, ...CUT_BY_VOICE },
  { target: CONFIRMING },
] as const;

/** Back to the reply where it paused (an onset that was not confirmed, a false interruption). */
export const resumeReply = (extra: readonly ['emitFalseInterruption', 'discardRecognition', 'closeOpen'] | readonly [] = []) => [
  { guard: 'audioStarted', target: SPEAKING, actions: ['resumeOutput', 'emitReplyResumed', ...extra] },
  { target: THINKING, actions: ['resumeOutput', 'emitReplyResumed', ...extra] },
] as const;

type ReplyEnd = Extract<SessionEvent, { type: 'reply.done' | 'reply.failed' }>;
const endText = (event: ReplyEnd): string => (event.type === 'reply.done' ? event.text : event.playedText);

// The reply ended by itself: done (all of it was heard) or failed (what was heard, marked as cut).
// An utterance still open (the user spoke during an undecided interruption) is their next turn:
// its end of turn is decided as in `listening`.

export const COMMIT_REPLY = [
  { type: 'emitReplyDone', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: false }) },
  { type: 'recordReply', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: false }) },
] as const;

export const FAIL_REPLY = [
  {
    type: 'emitError',
    params: ({ event }: { event: ReplyEnd }) =>
      event.type === 'reply.failed'
        ? { code: event.error.code, message: event.error.message, ...(event.error.provider === undefined ? {} : { provider: event.error.provider }) }
        : { code: 'internal', message: 'reply failed' },
  },
  { type: 'emitReplyDone', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: true }) },
  { type: 'recordReply', params: ({ event }: { event: ReplyEnd }) => ({ text: endText(event), interrupted: true }) },
  'interruptMotion',
] as const;

/** Start the next reply: the turn counter moves on and the reply actor is invoked by `replying`. */
export const startReply = (source: 'voice' | 'text' | 'idle' | 'stage') => ['nextTurn', { type: 'emitTurnStart', params: { source } }] as const;
export const final = ({ event }: { event: { output: string } }) => ({ text: event.output });
export const transcript = ({ event }: { event: { output: string } }) => ({ transcript: event.output });
export const sttError = { type: 'emitError', params: ({ event }: { event: { error: unknown } }) => errorParams(event.error, 'provider_failed') } as const;

