import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dir = new URL('../../machines/', import.meta.url);
const files = readdirSync(dir).filter((name) => name.endsWith('.ts'));

describe('machines/ layering', () => {
  it.each(files)('%s imports nothing at run time from src/ (types only)', (name) => {
    const source = readFileSync(new URL(name, dir), 'utf8');
    const runtime = [...source.matchAll(/^import\s+(?!type\b)[^;]*from\s+'(\.\.\/src\/[^']+)'/gm)].map((m) => m[1]);
    expect(runtime).toEqual([]);
  });
});
