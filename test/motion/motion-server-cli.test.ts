/**
 * `voxstate motion-server` as a real child process: --help, and fault injection from the command
 * line (--fault, repeatable), driven by the real MotionClient over loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { MotionClient } from '../../src/motion/client/index.js';
import { MotionError } from '../../src/motion/errors.js';
import { parseFaultFlags } from '../../src/motion/local-server/faults.js';
import { speech, until } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const children: ChildProcess[] = [];
const clients: MotionClient[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function run(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'motion-server', ...args], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], VOXSTATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function started(cli: ReturnType<typeof run>): Promise<{ consoleEndpointUrl: string; ingressEndpointUrl: string }> {
  await until(() => /ingressEndpointUrl: \S+/.test(cli.output()) || cli.child.exitCode !== null, 20_000, 'the motion server to listen');
  const consoleEndpointUrl = /consoleEndpointUrl: (\S+)/.exec(cli.output())?.[1];
  const ingressEndpointUrl = /ingressEndpointUrl: (\S+)/.exec(cli.output())?.[1];
  if (consoleEndpointUrl === undefined || ingressEndpointUrl === undefined) throw new Error(`did not start:\n${cli.output()}`);
  return { consoleEndpointUrl, ingressEndpointUrl };
}

function client(endpoints: { consoleEndpointUrl: string; ingressEndpointUrl: string }): MotionClient {
  const c = new MotionClient({ apiKey: 'dev', appId: 'local', avatarId: 'avatar-1', handshakeTimeoutMs: 3000, ...endpoints });
  clients.push(c);
  return c;
}

async function connectError(c: MotionClient): Promise<MotionError> {
  const error = await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MotionError);
  return error as MotionError;
}

describe('voxstate motion-server', () => {
  it('--help prints the usage, flags and faults, and exits 0', async () => {
    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toMatch(/Usage: voxstate motion-server \[options\]/);
    for (const flag of ['--port', '--api-key', '--fault', 'close-before-confirm', 'drop-after=<n|duration>', 'refuse-upgrade=<status>']) {
      expect(help.output()).toContain(flag);
    }
  });

  it('repeated --fault flags, each applied in turn: refuse-upgrade=402,times=1, close-before-confirm,times=1, drop-after=3 and close-after=300ms:4002', async () => {
    const cli = run([
      '--port', '0', '--api-key', 'dev',
      '--fault', 'refuse-upgrade=402,times=1',
      '--fault', 'close-before-confirm,times=1',
      '--fault', 'drop-after=3',
      '--fault', 'close-after=300ms:4002',
    ]);
    const endpoints = await started(cli);

    // 1st session: the upgrade is refused. 2nd: the socket closes when configure arrives, with no confirm.
    expect(await connectError(client(endpoints))).toMatchObject({ phase: 'connect', status: 402, reason: 'billing_required' });
    expect(await connectError(client(endpoints))).toMatchObject({ phase: 'handshake', closeCode: 4503, reason: 'upstream_unavailable', retryable: true });

    // 3rd: streaming, the TCP connection is destroyed after 3 animation messages.
    const streaming = client(endpoints);
    await streaming.connect();
    let animations = 0;
    const drops: Array<MotionError | undefined> = [];
    streaming.on('animation', () => (animations += 1));
    streaming.on('close', (error) => drops.push(error));
    streaming.sendAudio(speech(1), true);
    await until(() => drops.length > 0, 5000, 'the drop');
    expect(drops[0]).toMatchObject({ closeCode: 1006, reason: 'network', retryable: true });
    // The third message is the last one written before the connection is destroyed.
    expect(animations).toBeGreaterThan(0);
    expect(animations).toBeLessThanOrEqual(3);

    // 4th: an idle session is closed with 4002, 300 ms after its confirm.
    const idle = client(endpoints);
    await idle.connect();
    const closes: Array<MotionError | undefined> = [];
    idle.on('close', (error) => closes.push(error));
    await until(() => closes.length > 0, 5000, 'the timed close');
    expect(closes[0]).toMatchObject({ closeCode: 4002, reason: 'session_timeout' });

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });

  it('a bad --fault is a config_invalid error naming the flag and the value, exit 1, before any port opens', async () => {
    for (const spec of ['close-after=3']) {
      const bad = run(['--port', '0', '--api-key', 'dev', '--fault', spec]);
      expect(await bad.exited).toBe(1);
      expect(bad.output()).toContain(`config_invalid: --fault: ${JSON.stringify(spec)}`);
      expect(bad.output()).not.toContain('Motion Server on');
    }
  });

  it('parseFaultFlags maps every CLI fault to the programmatic plan and refuses what it cannot mean', () => {
    expect(
      parseFaultFlags([
        'refuse-upgrade=503,times=2',
        'close-before-confirm=4010',
        'close-after=5:4503',
        'drop-after=2s',
        'reject-configure=14',
        'empty-connection-id',
        'confirm-delay=1.5s',
        'frame-delay=20',
        'token-status=429',
      ]),
    ).toEqual({
      refuseUpgrade: { status: 503, times: 2 },
      closeBeforeConfirm: { code: 4010, reason: expect.any(String) },
      closeAfterFrames: { frames: 5, code: 4503, reason: 'fault injection' },
      dropAfterMs: { ms: 2000 },
      rejectConfigure: { code: 14 },
      emptyConnectionId: true,
      confirmDelayMs: 1500,
      frameDelayMs: 20,
      tokenStatus: 429,
    });
    expect(parseFaultFlags(['close-before-confirm', 'drop-after=3', 'close-after=500ms:4002'])).toEqual({
      closeBeforeConfirm: { code: 4503, reason: expect.any(String) },
      dropAfterFrames: { frames: 3 },
      closeAfterMs: { ms: 500, code: 4002, reason: 'fault injection' },
    });
    for (const [spec, problem] of [
      ['drop-after=soon', /duration/],
      ['frame-delay=5ms,times=2', /takes no times/],
      ['refuse-upgrade=99', /100–599/],
      ['close-before-confirm=1006', /cannot be sent/],
      ['refuse-upgrade', /needs an HTTP status/],
      ['drop-after=1,retries=2', /only times/],
    ] as const) {
      expect(() => parseFaultFlags([spec]), spec).toThrow(problem);
    }
    expect(() => parseFaultFlags(['drop-after=1', 'drop-after=2'])).toThrow(/given twice/);
  });
});
