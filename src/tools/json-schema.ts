/**
 * A deliberately small JSON Schema check for tools that only have a JSON Schema (MCP tools): the
 * mistakes models make most — a missing required property, a value of the wrong type, a value
 * outside an `enum`/`const` — found locally and reported with their paths, like zod issues. It
 * follows `properties`, `items` (one schema) and `additionalProperties: false`; every other keyword
 * (formats, ranges, patterns, combinators, `$ref`) is left to the server, whose refusal comes back
 * as a `tool_failed` result. Pure: values in, issues out.
 */
import type { ToolIssue } from '../providers/types.js';

type Schema = Readonly<Record<string, unknown>>;
type Path = readonly (string | number)[];

const PRIMITIVES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'object':
      return isSchema(value);
    default:
      return typeOf(value) === type;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function check(schema: Schema, value: unknown, path: Path, issues: ToolIssue[]): void {
  const declared = schema['type'];
  const types = (Array.isArray(declared) ? declared : [declared]).filter((t): t is string => typeof t === 'string' && PRIMITIVES.has(t));
  if (types.length > 0 && !types.some((type) => hasType(value, type))) {
    issues.push({ path, message: `Invalid input: expected ${types.join(' or ')}, received ${typeOf(value)}` });
    return;
  }
  if ('const' in schema && !sameJson(schema['const'], value)) {
    issues.push({ path, message: `Invalid input: expected ${JSON.stringify(schema['const'])}` });
  }
  const allowed = schema['enum'];
  if (Array.isArray(allowed) && !allowed.some((option) => sameJson(option, value))) {
    issues.push({ path, message: `Invalid option: expected one of ${allowed.map((option) => JSON.stringify(option)).join('|')}` });
  }
  if (isSchema(value)) {
    const properties = isSchema(schema['properties']) ? schema['properties'] : {};
    const required = Array.isArray(schema['required']) ? schema['required'].filter((key): key is string => typeof key === 'string') : [];
    for (const key of required) {
      if (!(key in value) || value[key] === undefined) issues.push({ path: [...path, key], message: 'Invalid input: expected a value, received undefined' });
    }
    for (const [key, item] of Object.entries(value)) {
      const property = properties[key];
      if (isSchema(property)) check(property, item, [...path, key], issues);
      else if (schema['additionalProperties'] === false) issues.push({ path: [...path, key], message: `Unrecognized key: "${key}"` });
    }
  }
  const items = schema['items'];
  if (Array.isArray(value) && isSchema(items)) value.forEach((item, index) => check(items, item, [...path, index], issues));
}

/** The issues of `value` against `schema` (empty when it passes the checks above). */
export function checkJsonSchema(schema: Schema, value: unknown): ToolIssue[] {
  const issues: ToolIssue[] = [];
  check(schema, value, [], issues);
  return issues;
}
