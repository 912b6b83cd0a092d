import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { ConfigError } from '../../src/errors.js';
import { defineTool, type ToolParameters } from '../../src/tools/define.js';

const noop = { signal: new AbortController().signal };

describe('defineTool', () => {
  const book = defineTool({
    name: 'book_table',
    description: 'Books a table',
    parameters: z.object({
      people: z.number().int().min(1).max(12).describe('How many guests'),
      date: z.iso.date(),
      seating: z.enum(['inside', 'terrace']).default('inside'),
      note: z.string().optional(),
    }),
    execute: (args) => ({ booked: args.people, seating: args.seating }),
    timeoutMs: 2_000,
    cancelOnInterrupt: false,
  });

  it('sends the model a JSON Schema object generated from zod: no $schema, defaults optional, descriptions kept', () => {
    expect(book.parameters).toEqual({
      type: 'object',
      properties: {
        people: { type: 'integer', minimum: 1, maximum: 12, description: 'How many guests' },
        date: { type: 'string', format: 'date', pattern: expect.any(String) as string },
        seating: { type: 'string', enum: ['inside', 'terrace'], default: 'inside' },
        note: { type: 'string' },
      },
      required: ['people', 'date'],
    });
    expect(book).toMatchObject({ name: 'book_table', description: 'Books a table', timeoutMs: 2_000, cancelOnInterrupt: false });
  });

  it('writes anyOf for a discriminated union (function schemas take anyOf, not oneOf)', () => {
    const tool = defineTool({
      name: 'pay',
      description: '',
      parameters: z.object({
        method: z.discriminatedUnion('kind', [z.object({ kind: z.literal('card'), last4: z.string() }), z.object({ kind: z.literal('cash') })]),
      }),
      execute: () => 'ok',
    });
    const method = (tool.parameters['properties'] as Record<string, Record<string, unknown>>)['method'];
    expect(method?.['oneOf']).toBeUndefined();
    expect(method?.['anyOf']).toHaveLength(2);
  });

  it('validate returns the parsed value (defaults applied) or every issue with its path', async () => {
    expect(await book.validate({ people: 2, date: '2026-12-24' })).toEqual({ ok: true, value: { people: 2, date: '2026-12-24', seating: 'inside' } });
    const refused = await book.validate({ people: 0, date: 'tomorrow', seating: 'roof' });
    expect(refused.ok).toBe(false);
    expect(refused.ok ? [] : refused.issues.map((issue) => issue.path)).toEqual([['people'], ['date'], ['seating']]);
    expect(refused.ok ? '' : refused.issues[0]?.message).toMatch(/>=1/);
  });

  it('execute runs the definition and resolves its result', async () => {
    expect(await book.execute({ people: 4, date: '2026-12-24', seating: 'terrace' }, noop)).toEqual({ booked: 4, seating: 'terrace' });
  });

  it('takes a zod/mini schema as well', async () => {
    const tool = defineTool({ name: 'mini', description: '', parameters: zm.object({ n: zm.number() }), execute: (args) => args.n * 2 });
    expect(tool.parameters).toEqual({ type: 'object', properties: { n: { type: 'number' } }, required: ['n'] });
    expect(await tool.validate({ n: 'x' })).toMatchObject({ ok: false, issues: [{ path: ['n'] }] });
    expect(await tool.execute({ n: 21 }, noop)).toBe(42);
  });

  it('refuses, naming the field, what cannot become a function tool', () => {
    const define = (parameters: unknown, name = 'x') => () => defineTool({ name, description: '', parameters: parameters as ToolParameters, execute: () => 1 });
    expect(define(z.string())).toThrow(ConfigError);
    expect(define(z.string())).toThrow(/tools\.x\.parameters: must be a zod object schema/);
    expect(define(z.object({ when: z.date() }))).toThrow(/tools\.x\.parameters: cannot be sent to a model as JSON Schema: Date/);
    expect(define({ type: 'object' })).toThrow(/must be a zod schema/);
    expect(define(z.object({}), 'book table')).toThrow(/tools\.name: 'book table' must be 1-64 letters/);
    expect(() => defineTool({ name: 'slow', description: '', parameters: z.object({}), execute: () => 1, timeoutMs: 0 })).toThrow(/tools\.slow\.timeoutMs/);
  });
});
