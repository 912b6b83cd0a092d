import fc from 'fast-check';
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

  it('limitHistory keeps what the unit-by-unit rule keeps, on random histories (system messages, tool rounds, orphan results)', () => {
    // The rule as first written: split into units, drop the oldest non-system ones but the newest.
    const reference = (history: readonly ChatMessage[], maxMessages: number, maxChars: number): ChatMessage[] => {
      const size = (m: ChatMessage): number => m.content.length + (m.role === 'assistant' ? (m.toolCalls ?? []).reduce((n, c) => n + c.name.length + c.arguments.length, 0) : 0);
      let messages = history.length;
      let chars = history.reduce((n, m) => n + size(m), 0);
      if (messages <= maxMessages && chars <= maxChars) return [...history];
      const all = units(history);
      const keep = all.map(() => true);
      for (let i = 0; i < all.length - 1 && (messages > maxMessages || chars > maxChars); i++) {
        const unit = all[i] as ChatMessage[];
        if (unit[0]?.role === 'system') continue;
        keep[i] = false;
        messages -= unit.length;
        for (const m of unit) chars -= size(m);
      }
      return all.filter((_, i) => keep[i]).flat();
    };
    const message = fc.oneof(
      fc.string({ maxLength: 12 }).map((content): ChatMessage => ({ role: 'user', content })),
      fc.string({ maxLength: 12 }).map((content): ChatMessage => ({ role: 'system', content })),
      fc.string({ maxLength: 12 }).map((content): ChatMessage => ({ role: 'assistant', content })),
      fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 2 }).map((ids): ChatMessage => ({ role: 'assistant', content: '', toolCalls: ids.map((id) => ({ id, name: 'f', arguments: '{}' })) })),
      fc.constantFrom('a', 'b', 'c', 'z').map((id): ChatMessage => ({ role: 'tool', toolCallId: id, name: 'f', content: 'ok' })),
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 40 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 200 }), (history, maxMessages, maxChars) => {
        expect(limitHistory(history, { maxMessages, maxChars })).toEqual(reference(history, maxMessages, maxChars));
      }),
      { numRuns: 500 },
    );
  });
});
