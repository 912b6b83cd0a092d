import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { Tool, ToolContext, ToolValidation } from '../../src/providers/types.js';
import { defineTool } from '../../src/tools/define.js';

const context: ToolContext = { signal: new AbortController().signal };

describe('defineTool types', () => {
  it('execute receives z.output of the schema and the tool keeps the inference', () => {
    const book = defineTool({
      name: 'book_table',
      description: 'Books a table',
      parameters: z.object({
        people: z.number().int(),
        date: z.iso.date(),
        note: z.string().optional(),
        seating: z.enum(['inside', 'terrace']).default('inside'),
      }),
      execute: (args) => {
        expectTypeOf(args).toEqualTypeOf<{ people: number; date: string; note?: string | undefined; seating: 'inside' | 'terrace' }>();
        // @ts-expect-error not a parameter of the schema
        void args.time;
        // @ts-expect-error people is a number, not a string
        args.people.toUpperCase();
        return { confirmed: true as const, people: args.people };
      },
    });
    expectTypeOf(book.execute).parameter(0).toEqualTypeOf<{ people: number; date: string; note?: string | undefined; seating: 'inside' | 'terrace' }>();
    expectTypeOf(book.execute).returns.toEqualTypeOf<Promise<{ confirmed: true; people: number }>>();
    expectTypeOf(book.validate).returns.toEqualTypeOf<Promise<ToolValidation<{ people: number; date: string; note?: string | undefined; seating: 'inside' | 'terrace' }>>>();
    expectTypeOf(book).toExtend<Tool>();
    const tools: readonly Tool[] = [book];

    const send = (fn: () => void) => fn; // type-level checks only; nothing runs
    // @ts-expect-error people must be a number
    send(() => void book.execute({ people: 'two', date: '2026-12-01', seating: 'inside' }, context));
    // @ts-expect-error date is required
    send(() => void book.execute({ people: 2, seating: 'inside' }, context));

    // @ts-expect-error the parameters are an object schema: the model sends an object of arguments
    send(() => defineTool({ name: 'echo', description: '', parameters: z.string(), execute: (text) => text }));
    // @ts-expect-error the parameters are a zod schema, not JSON Schema
    send(() => defineTool({ name: 'echo', description: '', parameters: { type: 'object' }, execute: () => 'ok' }));
    // @ts-expect-error execute's arguments follow the schema, not another shape
    send(() => defineTool({ name: 'echo', description: '', parameters: z.object({ text: z.string() }), execute: (args: { text: number }) => args.text }));

    const async = defineTool({ name: 'hours', description: '', parameters: z.object({}), execute: async () => 'noon to eleven' });
    expectTypeOf(async.execute).returns.toEqualTypeOf<Promise<string>>();
    // A transform's output is what execute gets; the model still sends the input.
    defineTool({
      name: 'party',
      description: '',
      parameters: z.object({ people: z.string().transform((text) => Number(text)) }),
      execute: (args) => {
        expectTypeOf(args.people).toEqualTypeOf<number>();
        return args.people;
      },
    });
    expect(tools).toHaveLength(1);
  });
});
