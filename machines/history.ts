/**
 * Conversation history as plain immutable data (it lives in the session machine's context).
 * A history is an array of ChatMessages; these functions return new arrays and never mutate.
 */
import type { ChatMessage, ToolCall } from '../src/providers/types.js';

export type History = readonly ChatMessage[];

export interface HistoryLimits {
  /** Keep at most this many messages (default 200). */
  readonly maxMessages: number;
  /** Keep at most this many characters of content (default 48 000, roughly 12k tokens). */
  readonly maxChars: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxMessages: 200, maxChars: 48_000 };

export function appendUser(history: History, text: string): History {
  return [...history, { role: 'user', content: text }];
}

/** The spoken part of a reply. Empty text adds nothing (a reply cut before any word was heard). */
export function appendAssistant(history: History, text: string, interrupted = false): History {
  if (text.length === 0) return history;
  return [...history, interrupted ? { role: 'assistant', content: text, interrupted: true } : { role: 'assistant', content: text }];
}

export function appendToolCalls(history: History, calls: readonly ToolCall[], text = ''): History {
  if (calls.length === 0) return history;
  return [...history, { role: 'assistant', content: text, toolCalls: calls }];
}

export function appendToolResult(history: History, toolCallId: string, name: string, content: string): History {
  return [...history, { role: 'tool', toolCallId, name, content }];
}

function size(message: ChatMessage): number {
  let chars = message.content.length;
  if (message.role === 'assistant' && message.toolCalls) {
    for (const call of message.toolCalls) chars += call.name.length + call.arguments.length;
  }
  return chars;
}

/**
 * Splits a history into units that must be kept or dropped together: an assistant message that
 * made tool calls plus the tool results that answer it; every other message is a unit of its own.
 */
export function units(history: History): ChatMessage[][] {
  const result: ChatMessage[][] = [];
  for (const message of history) {
    const last = result[result.length - 1];
    if (message.role === 'tool' && last !== undefined) {
      const head = last[0];
      if (head?.role === 'assistant' && head.toolCalls?.some((call) => call.id === message.toolCallId)) {
        last.push(message);
        continue;
      }
    }
    result.push([message]);
  }
  return result;
}

/**
 * Drops the oldest units until the history fits the limits. System messages are kept, a tool call
 * is never separated from its result, and the newest unit is kept even when it alone is too large.
 */
export function limitHistory(history: History, limits: HistoryLimits = DEFAULT_HISTORY_LIMITS): History {
  let messages = history.length;
  let chars = 0;
  for (const message of history) chars += size(message);
  if (messages <= limits.maxMessages && chars <= limits.maxChars) return history;

  // Walk the oldest units (the same ones `units` makes) and drop them until the rest fits; one
  // slice at the end, so a long history that is over by a message or two costs one pass.
  const keptSystem: ChatMessage[] = [];
  let start = 0;
  while (start < history.length && (messages > limits.maxMessages || chars > limits.maxChars)) {
    const head = history[start] as ChatMessage;
    let end = start + 1;
    if (head.role === 'assistant' && head.toolCalls !== undefined) {
      const calls = head.toolCalls;
      for (;;) {
        const next = history[end];
        if (next?.role !== 'tool' || !calls.some((call) => call.id === next.toolCallId)) break;
        end++;
      }
    }
    if (end >= history.length) break; // the newest unit stays, even alone too large
    if (head.role === 'system') keptSystem.push(head);
    else {
      messages -= end - start;
      for (let i = start; i < end; i++) chars -= size(history[i] as ChatMessage);
    }
    start = end;
  }
  const rest = history.slice(start);
  return keptSystem.length === 0 ? rest : [...keptSystem, ...rest];
}

export { words } from './words.js';
