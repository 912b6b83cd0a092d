import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForLine(get: () => string, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const start = Date.now();
  for (;;) {
    const match = get().match(pattern);
    if (match) return match;
    if (Date.now() - start > timeoutMs) throw new Error(`no ${pattern} in output:\n${get()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('voxstate CLI', () => {
  it('serve starts on the offline defaults, announces its providers and answers /health; SIGTERM stops it', async () => {
    const cli = run(['--port', '0']);
    const [, port] = await waitForLine(cli.output, /listening: ws:\/\/127\.0\.0\.1:(\d+)\/ws/);
    expect(cli.output()).toMatch(/LLM scripted-agent/);
    expect(cli.output()).toMatch(/TTS flite/);
    expect(cli.output()).toMatch(/AVATAR embedded local Motion Server at http:\/\/127\.0\.0\.1:\d+/);
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { ok: boolean; sessions: number };
    expect(health).toMatchObject({ ok: true, sessions: 0 });
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });

  it('a config file sets the port; a bad one is a clear error naming the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxstate-'));
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    const bad = run(['--config', join(dir, 'bad.json')]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/config_invalid: --config: .*bad\.json is not valid JSON/);
  });

  it('--webrtc-workers takes a thread count (0 = the main thread); anything else is a clear error naming the flag', async () => {
    const bad = run(['--port', '0', '--webrtc-workers', 'two']);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/config_invalid: --webrtc-workers: expected a whole number of threads/);
    const fromEnv = run(['--port', '0'], { VOXSTATE_WEBRTC_WORKERS: '-1' });
    expect(await fromEnv.exited).toBe(1);
    expect(fromEnv.output()).toMatch(/config_invalid: VOXSTATE_WEBRTC_WORKERS/);
    const inMain = run(['--port', '0', '--webrtc-workers', '0']);
    await waitForLine(inMain.output, /listening: ws:\/\/127\.0\.0\.1:\d+\/ws/);
    inMain.child.kill('SIGTERM');
    expect(await inMain.exited).toBe(0);
  });

  it('--help explains the commands; an unknown command exits 2', async () => {
    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toMatch(/voxstate \[serve\] \[options\]/);
    const unknown = run(['dance']);
    expect(await unknown.exited).toBe(2);
  });

  it('SPATIUS_API_KEY without SPATIUS_APP_ID fails at start-up naming the variable', async () => {
    const cli = run(['--port', '0'], { SPATIUS_API_KEY: 'k' });
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toMatch(/SPATIUS_APP_ID: is required/);
    expect(cli.output()).not.toMatch(/\bk\b.*apiKey/);
  });

  it('a forced provider without its credentials fails at start-up naming the variable', async () => {
    const cli = run(['--port', '0'], { VOXSTATE_LLM: 'openai' });
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toMatch(/OPENAI_API_KEY/);
  });
});
