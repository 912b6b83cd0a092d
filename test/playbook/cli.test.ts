import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import restaurant from '../../examples/playbook-restaurant/playbook.js';
import { playbookGraph } from '../../src/playbook/graph.js';
import { RawClient } from '../server/helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Built by `npm install` (the package's prepare script) or `npm run build`.
const BIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/playbook-restaurant/playbook.ts', import.meta.url));
const PLAYBOOK_API = pathToFileURL(fileURLToPath(new URL('../../src/playbook/index.js', import.meta.url))).href;
const SCRIPT = readFileSync(fileURLToPath(new URL('../../examples/playbook-restaurant/script.txt', import.meta.url)), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line.length > 0 && !line.startsWith('#'));
const dir = mkdtempSync(join(tmpdir(), 'voxstate-playbook-'));
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The sources under tsx, as `npm start` runs them (`voxstate` resolves to src/ there); `bin`: the built bin, as `npx voxstate` runs it. */
function run(args: string[], how: 'sources' | 'bin' = 'sources'): { child: ChildProcess; stdout: () => string; output: () => string; exited: Promise<number | null> } {
  const argv = how === 'bin' ? [BIN, ...args] : ['--conditions=voxstate-source', '--import', 'tsx', MAIN, ...args];
  const child = spawn(process.execPath, argv, {
    // A clean environment: no keys, so the offline providers are chosen.
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => stdout, output: () => output, exited };
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A plain JavaScript definition (not through definePlaybook) with two errors and a warning. */
const BROKEN_JS = `export default {
  id: 'broken',
  initialStage: 'greet',
  stages: {
    greet: { systemPrompt: 'Greet.', maxTurns: 0 },
    confirm: { systemPrompt: 'Confirm.' },
    lost: { systemPrompt: 'Nothing leads here.' },
  },
  transitions: [
    { from: 'greet', to: 'confrim', condition: { type: 'keyword', keywords: ['yes'] } },
    { from: 'greet', to: 'confirm', condition: { type: 'keyword', keywords: ['ok'] } },
    { from: 'confirm', to: 'end', condition: { type: 'timeout' } },
  ],
};
`;

describe('voxstate playbook', () => {
  it('validate: the restaurant example has no problems (exit 0)', async () => {
    const cli = run(['playbook', 'validate', EXAMPLE]);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.stdout().trim()).toBe("playbook 'restaurant' (5 stages, 9 transitions): no problems found");
  });

  it('validate: a broken module prints every issue with its stage and field, and exits 1', async () => {
    const cli = run(['playbook', 'validate', write('broken.mjs', BROKEN_JS)]);
    expect(await cli.exited, cli.output()).toBe(1);
    expect(cli.stdout().trim().split('\n')).toEqual([
      'error greet.maxTurns: must be a positive integer, got 0',
      "error greet.transitions[0].to: 'confrim' is not a stage or 'end' (stages: 'greet', 'confirm', 'lost')",
      "error confirm.transitions[2].condition.type: stage 'confirm' does not set timeoutMs",
      "warning lost: no transition path leads to it from 'greet'",
      "playbook 'broken' (3 stages, 3 transitions): 3 errors, 1 warning",
    ]);
  });

  it('validate: a TypeScript module whose definePlaybook throws while loading is reported the same way', async () => {
    const path = write(
      'broken.ts',
      `import { definePlaybook } from '${PLAYBOOK_API}';
export default definePlaybook({
  id: 'typed',
  initialStage: 'greet',
  stages: { greet: { systemPrompt: '' } },
  transitions: [{ from: 'greet', to: 'end', condition: { type: 'llmDecision', description: '' } }],
});
`,
    );
    const cli = run(['playbook', 'validate', path]);
    expect(await cli.exited, cli.output()).toBe(1);
    expect(cli.stdout().trim().split('\n')).toEqual([
      'error greet.systemPrompt: every stage needs a system prompt (what the LLM is to do in it)',
      'error greet.transitions[0].condition.description: tells the LLM when to take this transition; it cannot be empty',
      `${path}: 2 errors, 0 warnings`,
    ]);
  });

  it('validate: warnings alone exit 0', async () => {
    const cli = run(['playbook', 'validate', write('warnings.mjs', BROKEN_JS.replace("'confrim'", "'confirm'").replace('maxTurns: 0', 'timeoutMs: 5000').replace("from: 'confirm', to: 'end'", "from: 'greet', to: 'end'"))]);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.stdout()).toMatch(/^warning lost: no transition path leads to it from 'greet'$/m);
    expect(cli.stdout()).toMatch(/^warning confirm: no transition path leads from it to 'end'$/m);
    expect(cli.stdout()).toMatch(/0 errors, 2 warnings/);
  });

  it('graph: prints the Mermaid diagram of the example, and refuses a broken module', async () => {
    const cli = run(['playbook', 'graph', EXAMPLE]);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.stdout()).toBe(`${playbookGraph(restaurant)}\n`);
    expect(cli.stdout()).toMatch(/^stateDiagram-v2\n {4}state "any other stage" as any_stage\n {4}\[\*\] --> greet\n/);

    const broken = run(['playbook', 'graph', join(dir, 'broken.mjs')]);
    expect(await broken.exited).toBe(1);
    expect(broken.output()).toMatch(/config_invalid: playbook: 'broken' has 3 errors:\n {2}error greet\.maxTurns/);
  });

  it('a missing module, a module without a default export and a missing argument are clear errors', async () => {
    const missing = run(['playbook', 'validate', join(dir, 'nope.ts')]);
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toMatch(/config_invalid: playbook: cannot import .*nope\.ts: no such file/);
    const noDefault = run(['playbook', 'graph', write('named.mjs', 'export const playbook = {};\n')]);
    expect(await noDefault.exited).toBe(1);
    expect(noDefault.output()).toMatch(/named\.mjs has no default export/);
    const usage = run(['playbook', 'validate']);
    expect(await usage.exited).toBe(2);
    expect(usage.output()).toMatch(/voxstate playbook: which module\?/);
  });

  it('--help lists the playbook commands and the --playbook flag', async () => {
    const help = run(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.output()).toMatch(/voxstate playbook validate <module>/);
    expect(help.output()).toMatch(/voxstate playbook graph <module>/);
    expect(help.output()).toMatch(/--playbook <module>/);
  });

  it('serve --playbook: a broken playbook stops start-up listing its errors', async () => {
    const cli = run(['serve', '--port', '0', '--playbook', join(dir, 'broken.mjs')]);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toMatch(/config_invalid: playbook: 'broken' has 3 errors/);
    expect(cli.output()).not.toMatch(/listening/);
  });

  it('--playbook on the default command runs the example, its offline agent standing in for the LLM', async () => {
    const cli = run(['--port', '0', '--playbook', EXAMPLE]);
    const start = Date.now();
    while (!/listening: ws:\/\//.test(cli.output())) {
      if (cli.child.exitCode !== null || Date.now() - start > 45_000) throw new Error(`did not start:\n${cli.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(cli.output()).toMatch(/PLAYBOOK 'restaurant' \(5 stages: greet, party, when, confirm, done\) from .*playbook\.ts/);
    expect(cli.output()).toMatch(/LLM restaurant-agent — no LLM configured: the playbook module's offlineLlm stands in/);
    expect(cli.output()).not.toMatch(/another copy of voxstate/);
    // The server runs it: a session starts in the initial stage and hears its greeting.
    const url = /listening: (ws:\/\/\S+)/.exec(cli.output())?.[1] ?? '';
    const session = new RawClient(url);
    try {
      await session.hello();
      expect(await session.next('stage.change')).toEqual({ type: 'stage.change', from: null, to: 'greet', reason: { kind: 'start' } });
      expect((await session.next('reply.done'))['text']).toBe('Trattoria Voxstate, good evening! Would you like to book a table?');
      session.send({ type: 'user.text', text: 'I would like to book a table' });
      expect(await session.next('stage.change', (m) => m['to'] === 'party')).toMatchObject({ from: 'greet', reason: { kind: 'keyword', keyword: 'book' } });
    } finally {
      await session.close();
    }
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
  it('the built voxstate bin runs the .ts example with one copy of the library, and script.txt walks every stage', async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: npm install builds it (or run npm run build)`);
    const cli = run(['--port', '0', '--playbook', EXAMPLE], 'bin');
    const start = Date.now();
    while (!/listening: ws:\/\//.test(cli.output())) {
      if (cli.child.exitCode !== null || Date.now() - start > 45_000) throw new Error(`did not start:\n${cli.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The example's `import 'voxstate'` resolved to the bin's own copy (dist/).
    expect(cli.output()).not.toMatch(/another copy of voxstate/);
    expect(cli.output()).toMatch(/PLAYBOOK 'restaurant' \(5 stages/);
    const url = /listening: (ws:\/\/\S+)/.exec(cli.output())?.[1] ?? '';
    const session = new RawClient(url);
    try {
      await session.hello();
      await session.next('reply.done');
      for (const line of SCRIPT) {
        const answered = session.of('reply.done').length;
        session.send({ type: 'user.text', text: line });
        await session.next('reply.done', () => session.of('reply.done').length > answered);
        // A stage greeting may follow the answer: wait until the session listens and is quiet.
        for (let quiet = 0, seen = -1; quiet < 3; ) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          quiet = session.of('session.state').at(-1)?.['state'] === 'listening' && session.messages.length === seen ? quiet + 1 : 0;
          seen = session.messages.length;
        }
      }
      await session.next('stage.change', (m) => m['to'] === null);
      expect(session.of('stage.change').map((m) => m['to'])).toEqual(['greet', 'party', 'when', 'confirm', 'done', null]);
      expect(session.of('tool.start').map((m) => m['name'])).toEqual(['set_party_size', 'set_date_time', 'confirm_booking']);
      expect(session.of('error')).toEqual([]);
    } finally {
      await session.close();
    }
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
  });
});
