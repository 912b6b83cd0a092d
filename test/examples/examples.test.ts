import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

function runExample(file: string, args: string[] = []): Promise<{ code: number | null; output: string }> {
  const path = fileURLToPath(new URL(`../../examples/${file}`, import.meta.url));
  return new Promise((resolve) => {
    // A clean environment: the examples must work with no keys.
    const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { env: { PATH: process.env['PATH'], HOME: process.env['HOME'] }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('examples', () => {
  it('custom-provider: the FAQ LLM answers, and the answer cut by the user keeps only what was heard', async () => {
    const { code, output } = await runExample('custom-provider.ts');
    expect(code, output).toBe(0);
    expect(output).toMatch(/assistant We are open from noon to eleven/);
    expect(output).toMatch(/assistant There is free parking .*\[cut off\]/);
  });

  it('embed-server --once: one typed turn through the client on the offline voice', async () => {
    const { code, output } = await runExample('embed-server.ts', ['--once']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/llm: scripted-agent/);
    expect(output).toMatch(/agent: .+/);
  });

  it('avatar-relay: the local Motion Server animates the reply at 25 keyframes per second of audio', async () => {
    const { code, output } = await runExample('avatar-relay.ts');
    expect(code, output).toBe(0);
    const match = /avatar feed: (\d+) FLAME keyframes for ([\d.]+) s of speech \(([\d.]+) per second of audio\), 1 conversation id/.exec(output);
    expect(match, output).not.toBeNull();
    expect(Number(match?.[3])).toBeGreaterThan(24);
    expect(Number(match?.[3])).toBeLessThan(26);
  });
});
