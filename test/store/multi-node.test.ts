/**
 * Two real `voxstate serve` processes sharing a real redis-server (`--session-store`), running the
 * restaurant playbook with its offline agent (no API keys). A conversation on node 1, node 1 killed
 * with SIGKILL in the middle of it, the client resumes on node 2 with the same session id and token
 * and the conversation goes on there: node 2's agent books the day the user gave node 1. Node 1,
 * restarted, cannot take the session back with the spent token; and a node frozen while its session
 * moved on (SIGSTOP … SIGCONT) wakes up to a store that refuses its writes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, type Received } from '../server/helpers.js';
import { RedisServer } from './redis-server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/playbook-restaurant/playbook.ts', import.meta.url));
const PREFIX = 'voxstate:session:';

let redis: RedisServer;
let inspect: Redis;
const children: ChildProcess[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  inspect = new Redis(redis.url);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  inspect?.disconnect();
  await redis?.destroy();
});

interface Node {
  readonly child: ChildProcess;
  readonly url: string;
  readonly nodeId: string;
  readonly output: () => string;
}

/** `voxstate serve` from the sources (as `npm start` runs it), in a clean environment: no keys, offline providers, no avatar. */
async function serve(): Promise<Node> {
  const child = spawn(process.execPath, ['--conditions=voxstate-source', '--import', 'tsx', MAIN, 'serve', '--port', '0', '--playbook', EXAMPLE, '--session-store', redis.url], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], VOXSTATE_AVATAR: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const started = Date.now();
  while (!/listening: ws:\/\//.test(output)) {
    if (child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`voxstate serve did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const url = /listening: (ws:\/\/\S+)/.exec(output)?.[1] ?? '';
  const nodeId = /STORE redis:\/\/\S+ \(shared; node (\S+)\)/.exec(output)?.[1] ?? '';
  expect(nodeId).not.toBe('');
  return { child, url, nodeId, output: () => output };
}

async function kill(node: Node, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const exited = new Promise<void>((resolve) => node.child.once('exit', () => resolve()));
  node.child.kill(signal);
  await exited;
}

function client(url: string): RawClient {
  const c = new RawClient(url);
  clients.push(c);
  return c;
}

/** Sends a user turn and waits until the session answered and is quiet again (a stage greeting may follow the answer). */
async function turn(c: RawClient, text: string): Promise<void> {
  const answered = c.of('reply.done').length;
  c.send({ type: 'user.text', text });
  await c.next('reply.done', () => c.of('reply.done').length > answered, 20_000);
  for (let quiet = 0, seen = -1; quiet < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    quiet = c.of('session.state').at(-1)?.['state'] === 'listening' && c.messages.length === seen ? quiet + 1 : 0;
    seen = c.messages.length;
  }
}

interface Stored {
  readonly version: number;
  readonly node: string;
  readonly history: readonly { role: string; content: string }[];
  readonly stage: string | undefined;
}

async function stored(sessionId: string): Promise<Stored | undefined> {
  const fields = await inspect.hgetall(`${PREFIX}${sessionId}`);
  if (fields['v'] === undefined || fields['state'] !== 'live') return undefined;
  const body = JSON.parse(fields['body'] ?? '{}') as { history: Stored['history']; playbook?: { stage: string } };
  return { version: Number(fields['v']), node: fields['node'] ?? '', history: body.history, stage: body.playbook?.stage };
}

async function resume(url: string, sessionId: unknown, resumeToken: unknown): Promise<{ client: RawClient; answer: Received }> {
  const c = client(url);
  await c.opened();
  c.send({ type: 'session.resume', protocol: 1, sessionId, resumeToken });
  const answer = await Promise.race([c.next('session.resumed', () => true, 20_000), c.next('error', () => true, 20_000)]);
  return { client: c, answer };
}

/** Nodes the first test leaves running (node 1 restarted, node 2) for the second: starting one takes seconds. */
let running: readonly [Node, Node] | undefined;

describe('voxstate serve --session-store redis:// on two nodes', () => {
  it('node 1 killed with SIGKILL mid-conversation: the client resumes on node 2, which goes on with node 1’s conversation; node 1 restarted cannot take it back', async () => {
    const [one, two] = await Promise.all([serve(), serve()]);
    expect(one.nodeId).not.toBe(two.nodeId);

    // The conversation on node 1: greet → party → when, and the day (but not yet the time).
    const c = client(one.url);
    const ready = await c.hello();
    const sessionId = String(ready['sessionId']);
    await c.next('reply.done', () => true, 20_000);
    await turn(c, "Hello, I'd like to book a table please");
    await turn(c, 'There will be four of us');
    await turn(c, 'On Saturday');
    expect(c.of('reply.done').at(-1)?.['text']).toBe('What time on Saturday?');
    // What node 1 committed (the turn boundary write lands shortly after the reply).
    await expect.poll(async () => (await stored(sessionId))?.history.at(-1)?.content, { timeout: 10_000 }).toBe('What time on Saturday?');
    const committed = await stored(sessionId);
    expect(committed).toMatchObject({ node: one.nodeId, stage: 'when' });

    await kill(one, 'SIGKILL');

    // Same session id and token, on node 2.
    const { client: onTwo, answer } = await resume(two.url, sessionId, ready['resumeToken']);
    expect(answer).toMatchObject({ type: 'session.resumed', sessionId, stage: 'when', state: 'listening', historyLength: committed?.history.length });
    const newToken = answer['resumeToken'];
    expect(typeof newToken).toBe('string');
    expect(newToken).not.toBe(ready['resumeToken']);
    const claimed = await stored(sessionId);
    // Claimed before the answer: node 2's now, at a later version (node 2 may have written again since).
    expect(claimed?.node).toBe(two.nodeId);
    expect(claimed?.version).toBeGreaterThan(committed?.version ?? 0);

    // The next turn on node 2 needs the history: the time alone books the day given to node 1.
    await turn(onTwo, 'Half past seven');
    expect(onTwo.of('tool.start').map((m) => [m['name'], m['arguments']])).toEqual([['set_date_time', { day: 'saturday', time: '19:30' }]]);
    await onTwo.next('stage.change', (m) => m['to'] === 'confirm');
    // Node 2 resumed the stage; it did not greet it again (node 1 did, and the history has it).
    expect(onTwo.of('reply.done').map((m) => m['text'])).not.toContain('What day and time would you like?');
    await expect.poll(async () => (await stored(sessionId))?.history.length, { timeout: 10_000 }).toBeGreaterThan(committed?.history.length ?? 0);
    expect(await stored(sessionId)).toMatchObject({ node: two.nodeId, stage: 'confirm' });

    // Node 1 comes back: it holds nothing, and the token it once accepted no longer opens the session.
    const restarted = await serve();
    const before = await stored(sessionId);
    const { answer: refused } = await resume(restarted.url, sessionId, ready['resumeToken']);
    expect(refused).toMatchObject({ type: 'error', code: 'session_resume_refused', fatal: true });
    // The party size from node 1's part and the day and time from node 2's: confirmed on node 2.
    await turn(onTwo, 'Yes, please confirm');
    expect(onTwo.of('tool.start').at(-1)).toMatchObject({ name: 'confirm_booking', arguments: { people: 4, day: 'saturday', time: '19:30' } });
    const after = await stored(sessionId);
    expect(after?.node).toBe(two.nodeId);
    expect(after?.version).toBeGreaterThan(before?.version ?? 0);
    expect(onTwo.of('error')).toEqual([]);
    // The tokens never reached a log line.
    for (const node of [one, two, restarted]) {
      expect(node.output()).not.toContain(String(ready['resumeToken']));
      expect(node.output()).not.toContain(String(newToken));
    }
    running = [restarted, two];
  }, 150_000);

  it('a node frozen (SIGSTOP) while its session is resumed elsewhere wakes up to refused writes and ends its copy without touching the record', async () => {
    const [one, two] = running ?? (await Promise.all([serve(), serve()]));
    const c = client(one.url);
    const ready = await c.hello();
    const sessionId = String(ready['sessionId']);
    await c.next('reply.done', () => true, 20_000);
    await turn(c, "Hello, I'd like to book a table please");
    await expect.poll(async () => (await stored(sessionId))?.stage, { timeout: 10_000 }).toBe('party');
    const health = async (node: Node): Promise<number> => {
      const { port } = new URL(node.url);
      return ((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { sessions: number }).sessions;
    };
    expect(await health(one)).toBe(1);

    one.child.kill('SIGSTOP');
    // The client gives up on the frozen node and resumes on node 2.
    c.socket.terminate();
    const { client: onTwo, answer } = await resume(two.url, sessionId, ready['resumeToken']);
    expect(answer).toMatchObject({ type: 'session.resumed', stage: 'party' });
    await turn(onTwo, 'There will be four of us');
    await expect.poll(async () => (await stored(sessionId))?.stage, { timeout: 10_000 }).toBe('when');
    const held = await stored(sessionId);

    one.child.kill('SIGCONT');
    // Node 1 sees its client gone, suspends the session and writes that: refused, so its copy ends.
    await expect.poll(() => health(one), { timeout: 20_000 }).toBe(0);
    expect(await stored(sessionId)).toEqual(held);
    expect(one.output()).toMatch(/session store refused a write/);
    // Node 2 goes on undisturbed.
    await turn(onTwo, 'On Saturday');
    expect(onTwo.of('reply.done').at(-1)?.['text']).toBe('What time on Saturday?');
    expect(await stored(sessionId)).toMatchObject({ node: two.nodeId });
  }, 150_000);
});
