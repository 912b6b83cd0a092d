/** examples/inspector.ts runs as documented: with no keys, one typed turn seen through the inspector stream and /metrics. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

function runExample(args: string[]): Promise<{ code: number | null; output: string }> {
  const path = fileURLToPath(new URL('../../examples/inspector.ts', import.meta.url));
  return new Promise((resolve) => {
    // A clean environment: the example must work with no keys.
    const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { env: { PATH: process.env['PATH'], HOME: process.env['HOME'] }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('examples/inspector.ts', () => {
  it('--once: the inspector stream sees the session think, and /metrics counts the typed turn', async () => {
    const { code, output } = await runExample(['--once']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/inspector: http:\/\/127\.0\.0\.1:\d+\/inspect {3}metrics: http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(output).toMatch(/inspector saw \d+ state changes, e\.g\. \{"active":\{.*"turn":\{"replying":"thinking"\}/);
    expect(output).toContain('voxstate_turns_total{source="text"} 1');
  });
});
