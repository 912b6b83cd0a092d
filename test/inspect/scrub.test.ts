/** What the inspector may show of a value (src/inspect/scrub.ts). */
import { createActor, createMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { FORWARD_LIMITS, isSecretKey, LOG_LIMITS, REDACTED, scrub, scrubbedJson } from '../../src/inspect/scrub.js';

describe('scrub', () => {
  it('redacts secret-named properties at any depth, and not counters that merely mention tokens', () => {
    for (const key of ['token', 'resumeToken', 'apiKey', 'api_key', 'x-api-key', 'clientSecret', 'password', 'Authorization', 'credentials', 'resumeTokenHash']) expect(isSecretKey(key), key).toBe(true);
    for (const key of ['maxTokens', 'inputTokens', 'text', 'keyword', 'tokenizer']) expect(isSecretKey(key), key).toBe(false);
    const value = scrub({ type: 'session.resume', token: 'abc', nested: { deeper: { apiKey: 'k-1', keep: 1 } }, usage: { inputTokens: 3 } });
    expect(value).toEqual({ type: 'session.resume', token: REDACTED, nested: { deeper: { apiKey: REDACTED, keep: 1 } }, usage: { inputTokens: 3 } });
  });

  it('scrubs JSON held in a string (tool call arguments) as the object it is', () => {
    expect(scrub({ arguments: '{"user":"ann","password":"hunter2"}' })).toEqual({ arguments: `{"user":"ann","password":"${REDACTED}"}` });
    expect(scrub('{not json')).toBe('{not json');
  });

  it('cuts a known secret out of every string, wherever it occurs', () => {
    const secret = 'Zq3-very-secret-token';
    expect(scrub({ text: `my token is ${secret}, ok`, list: [secret] }, LOG_LIMITS, [secret])).toEqual({ text: `my token is ${REDACTED}, ok`, list: [REDACTED] });
  });

  it('summarizes binary data, names actors, and survives cycles, errors and odd values', () => {
    const actor = createActor(createMachine({ id: 'm' }), { id: 'child' });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const error = Object.assign(new Error('boom'), { code: 'provider_failed' });
    expect(scrub({ pcm: new Int16Array(480), buf: new ArrayBuffer(8), ref: actor, cyclic, error, n: Number.NaN, f: function named() {}, big: 10n, at: new Date(0) }, FORWARD_LIMITS)).toEqual({
      pcm: { binary: 'Int16Array', length: 480 },
      buf: { binary: 'ArrayBuffer', length: 8 },
      ref: { actor: 'child' },
      cyclic: { a: 1, self: '[circular]' },
      error: { error: 'Error', message: 'boom', code: 'provider_failed' },
      n: 'NaN',
      f: { function: 'named' },
      big: '10',
      at: '1970-01-01T00:00:00.000Z',
    });
  });

  it('shortens long strings, long arrays and deep nesting', () => {
    const limits = { maxDepth: 2, maxString: 5, maxItems: 3 };
    expect(scrub({ s: 'abcdefgh', list: [1, 2, 3, 4, 5], deep: { a: { b: 1 } } }, limits)).toEqual({ s: 'abcde…(+3)', list: [1, 2, 3, '… 2 more'], deep: { a: '[…]' } });
  });

  it('scrubbedJson writes exactly the JSON of the scrubbed copy', () => {
    const actor = createActor(createMachine({ id: 'm' }), { id: 'child' });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const corpus: unknown[] = [
      { type: 'playout.word', segment: 0, words: 3 },
      { type: 'session.resume', token: 'abc' },
      { type: 'vad.speechEnd', atMs: 1, audio: { samples: new Float32Array(10), sampleRate: 16_000 } },
      { type: 'tools', calls: [{ name: 'login', arguments: '{"password":"x","user":"ann"}' }], skip: undefined, n: Number.POSITIVE_INFINITY },
      { type: 'x', ref: actor, when: new Date(0), error: new Error('e'), f() {}, list: [1, undefined, 'two'], map: new Map([[1, { apiKey: 'k' }]]), set: new Set([1]), cyclic },
      { long: 'y'.repeat(1000), nested: { a: { b: { c: { d: { e: { f: 1 } } } } } }, many: Array.from({ length: 50 }, (_, i) => i) },
      'plain string with secret-123 inside',
      42,
      null,
    ];
    const limits = { ...LOG_LIMITS, maxChars: undefined };
    for (const value of corpus) expect(scrubbedJson(value, limits, ['secret-123'])).toBe(JSON.stringify(scrub(value, limits, ['secret-123'])));
  });

  it('scrubbedJson stops writing a large value after maxChars characters of strings', () => {
    const history = Array.from({ length: 8 }, (_, i) => ({ role: 'user', content: `message ${i} `.repeat(10) }));
    const text = scrubbedJson({ type: 'xstate.init', input: { messages: history } }, { maxDepth: 5, maxString: 1000, maxItems: 20, maxChars: 250 });
    expect(text.length).toBeLessThan(600);
    expect(JSON.parse(text)).toMatchObject({ type: 'xstate.init', input: { messages: expect.arrayContaining([expect.stringMatching(/^… \d+ more$/)]) } });
  });
});
