import { describe, expect, it } from 'vitest';
import { appendAssistant, appendToolCalls, appendToolResult, appendUser, limitHistory, units } from '../../machines/history.js';
import type { ChatMessage } from '../../src/providers/types.js';

describe('conversation history', () => {
  it('records user and assistant turns, marks interrupted replies, and skips empty ones', () => {
    let h = appendUser([], 'hi');
    h = appendAssistant(h, 'Hello there', true);
    h = appendAssistant(h, '');
    expect(h).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello there', interrupted: true },
    ]);
  });

  it('limitHistory drops the oldest messages but never separates a tool call from its result', () => {
    const system: ChatMessage = { role: 'system', content: 'sys' };
    let h: readonly ChatMessage[] = [system, { role: 'user', content: 'a'.repeat(50) }];
    h = appendToolCalls(h, [
      { id: 't1', name: 'lookup', arguments: '{}' },
      { id: 't2', name: 'lookup', arguments: '{}' },
    ]);
    h = appendToolResult(h, 't1', 'lookup', 'r1');
    h = appendToolResult(h, 't2', 'lookup', 'r2');
    h = appendAssistant(h, 'answer');
    h = appendUser(h, 'next');
    expect(units(h).map((u) => u.length)).toEqual([1, 1, 3, 1, 1]);

    const limited = limitHistory(h, { maxMessages: 4, maxChars: 1_000 });
    // The user message went first; the call+results unit (3 messages) could not be split, so it went too.
    expect(limited).toEqual([system, { role: 'assistant', content: 'answer' }, { role: 'user', content: 'next' }]);
    for (const message of limitHistory(h, { maxMessages: 6, maxChars: 1_000 })) {
      if (message.role === 'tool') expect(limitHistory(h, { maxMessages: 6, maxChars: 1_000 }).some((m) => m.role === 'assistant' && m.toolCalls?.some((c) => c.id === message.toolCallId))).toBe(true);
    }
  });

  it('limitHistory by characters keeps the newest unit even when it alone is too large', () => {
    const h = appendUser(appendUser([], 'old'), 'x'.repeat(100));
    expect(limitHistory(h, { maxMessages: 10, maxChars: 10 })).toEqual([{ role: 'user', content: 'x'.repeat(100) }]);
  });
});
