/**
 * `defineTool`: a tool whose parameters are a zod schema. The schema is the single source: the
 * JSON Schema the model sees is generated from it, the arguments are validated with it before
 * `execute` runs, and `execute` receives them typed (`z.output` of the schema, defaults applied).
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Tool, ToolContext, ToolValidation } from '../providers/types.js';

/**
 * A zod schema for a tool's arguments: an object (the model always sends a JSON object). The core
 * type, so schemas built with `zod/mini` work as well as `zod`'s.
 */
export type ToolParameters = z.core.$ZodType<Record<string, unknown>, Record<string, unknown>>;

export interface ToolDefinition<P extends ToolParameters, R> {
  /** What the model calls it: 1–64 letters, digits, `_` or `-` (OpenAI's rule). */
  readonly name: string;
  readonly description: string;
  readonly parameters: P;
  /** Runs a call with validated arguments. The result is serialized to JSON (strings as they are). */
  execute(args: z.output<P>, context: ToolContext): R | Promise<R>;
  /** How long a call may run before it is aborted and reported as timed out. Default: none. */
  readonly timeoutMs?: number;
  /** False: a barge-in does not abort a started call; it completes and its result is discarded. Default true. */
  readonly cancelOnInterrupt?: boolean;
}

/** The `Tool` `defineTool` returns: `parameters` is the generated JSON Schema, `schema` the zod one. */
export interface DefinedTool<P extends ToolParameters = ToolParameters, R = unknown> extends Tool {
  readonly schema: P;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Runs a call. The arguments must already be valid (the tools actor validates first). */
  execute(args: z.output<P>, context: ToolContext): Promise<R>;
  validate(args: unknown): Promise<ToolValidation<z.output<P>>>;
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The JSON Schema of a tool's parameters in the shape OpenAI function calling takes (the same
 * conversion as the openai package's own zod helper): draft-07, the *input* side of the schema
 * (a field with a default is optional to the model), no `$schema`, an object at the top, and
 * `anyOf` where zod writes `oneOf` for a discriminated union (function schemas support `anyOf`).
 */
export function toolJsonSchema(name: string, schema: ToolParameters): Record<string, unknown> {
  let json: Record<string, unknown>;
  try {
    json = z.toJSONSchema(schema, {
      target: 'draft-07',
      io: 'input',
      override: ({ jsonSchema }) => {
        const generated = jsonSchema as Record<string, unknown>;
        if (Array.isArray(generated['oneOf']) && generated['anyOf'] === undefined) {
          generated['anyOf'] = generated['oneOf'];
          delete generated['oneOf'];
        }
      },
    }) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`tools.${name}.parameters`, `cannot be sent to a model as JSON Schema: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  delete json['$schema'];
  if (json['type'] !== 'object') throw new ConfigError(`tools.${name}.parameters`, 'must be a zod object schema (the model sends an object of arguments)');
  return json;
}

export function defineTool<P extends ToolParameters, R>(definition: ToolDefinition<P, R>): DefinedTool<P, Awaited<R>> {
  const { name, description, parameters: schema, timeoutMs, cancelOnInterrupt } = definition;
  if (typeof name !== 'string' || !TOOL_NAME.test(name)) throw new ConfigError('tools.name', `'${String(name)}' must be 1-64 letters, digits, '_' or '-'`);
  if (typeof schema !== 'object' || schema === null || !('_zod' in schema)) throw new ConfigError(`tools.${name}.parameters`, 'must be a zod schema (z.object({...}))');
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new ConfigError(`tools.${name}.timeoutMs`, `must be a positive number of milliseconds (got ${String(timeoutMs)})`);
  }
  const run = definition.execute;
  return {
    name,
    description,
    parameters: toolJsonSchema(name, schema),
    schema,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(cancelOnInterrupt === undefined ? {} : { cancelOnInterrupt }),
    async validate(args) {
      // Async so async refinements work too.
      const result = await z.safeParseAsync(schema, args);
      if (result.success) return { ok: true, value: result.data };
      return {
        ok: false,
        issues: result.error.issues.map((issue) => ({
          path: issue.path.map((key) => (typeof key === 'number' ? key : String(key))),
          message: issue.message,
        })),
      };
    },
    async execute(args, context): Promise<Awaited<R>> {
      const value: Awaited<R> = await run(args, context);
      return value;
    },
  };
}
