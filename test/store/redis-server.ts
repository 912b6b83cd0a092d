/**
 * A real redis-server for the store tests: its own free loopback port and temp directory, an
 * append-only file fsynced on every write (so a stop and start on the same port and directory keeps
 * what was committed), stopped and removed by the test. A machine without /usr/bin/redis-server
 * fails the tests that need it — they are not skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = '/usr/bin/redis-server';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | undefined;
  #output = '';

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  static async start(): Promise<RedisServer> {
    if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: these tests need a real redis-server (apt-get install redis-server)`);
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'voxstate-redis-')));
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Starts (again) on the same port and directory; resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.running) return;
    this.#output = '';
    const child = spawn(
      REDIS_SERVER,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    child.stdout?.on('data', (data: Buffer) => (this.#output += data.toString()));
    child.stderr?.on('data', (data: Buffer) => (this.#output += data.toString()));
    const started = Date.now();
    while (!/Ready to accept connections/.test(this.#output)) {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${this.#output}`);
      if (Date.now() - started > 15_000) throw new Error(`redis-server did not start:\n${this.#output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops the server (SIGTERM: it finishes the append-only file) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
