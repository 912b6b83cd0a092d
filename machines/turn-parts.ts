/**
 * A user turn as the session builds it: final transcripts and typed text, in the order the session
 * learnt them (machines/session.ts `turnParts`), and how it becomes user messages. Pure functions.
 */
import type { ChatMessage } from '../src/providers/types.js';
import { appendUser } from './history.js';
import type { TurnPart } from './session-types.js';

/** The spoken parts of a turn, joined: its transcript. */
export function spokenText(parts: readonly TurnPart[]): string {
  return parts.filter((part) => !part.typed).map((part) => part.text).join(' ').trim();
}

/** A turn as user messages, in order: consecutive spoken parts are one message, each typed text its own. */
export function appendTurn(history: readonly ChatMessage[], parts: readonly TurnPart[]): readonly ChatMessage[] {
  let out = history;
  let spoken: string[] = [];
  const flush = (): void => {
    if (spoken.length > 0) out = appendUser(out, spoken.join(' '));
    spoken = [];
  };
  for (const part of parts) {
    if (part.text.length === 0) continue;
    if (part.typed) {
      flush();
      out = appendUser(out, part.text);
    } else spoken.push(part.text);
  }
  flush();
  return out;
}

/** Where the user messages at the end of the history start (its length when it does not end with one). */
export function trailingUserStart(history: readonly ChatMessage[]): number {
  let i = history.length;
  while (i > 0 && history[i - 1]?.role === 'user') i--;
  return i;
}

/** The user messages at the end of the history, joined: the turn that was just committed. */
export function lastUserText(history: readonly ChatMessage[]): string {
  return history
    .slice(trailingUserStart(history))
    .map((m) => m.content)
    .join(' ');
}
