#!/usr/bin/env node
/**
 * The `voxstate` command. Thin: parse flags, call the library, set process.exitCode.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isVoxError } from '../errors.js';
import { runMotionServer } from '../motion/local-server/run.js';
import { runDemo } from './demo.js';
import { runMachinesCommand } from './machines.js';
import { runPlaybookCommand } from './playbook.js';
import { runServe } from './serve.js';

export const HELP = `voxstate — actor-model session runtime for real-time voice AI

Usage:
  voxstate [serve] [options]     run the voice server (default command)
  voxstate demo                  a scripted conversation through the real session actor,
                                 in virtual time with fake providers (states, turns, history)
  voxstate motion-server --port <p> --api-key <k>
                                 a local Spatius-compatible Motion Server for offline AvatarKit tests
  voxstate playbook validate <module>
                                 check a playbook module (its default export): one line per issue,
                                 "error|warning stage.field: message"; exit 1 on errors
  voxstate playbook graph <module>
                                 print the playbook as a Mermaid stateDiagram-v2
  voxstate machines export [--machine session|reply|motion|playbook] [--playbook <module>]
                          [--format mermaid|json]
                                 print a statechart as Mermaid stateDiagram-v2 or JSON (nodes, edges)

Options (serve):
  -p, --port <port>      port to listen on (default 8787; env VOXSTATE_PORT)
      --host <host>      address to bind (default 127.0.0.1; env VOXSTATE_HOST)
  -c, --config <file>    JSON configuration file (env VOXSTATE_CONFIG); flags and env win over it
      --playbook <module>
                         run sessions through the playbook the module exports by default (.js or
                         .ts); its "offlineLlm" export, if any, replaces the scripted agent
      --log-level <level>
                         fatal | error | warn | info | debug | trace | silent (default warn;
                         env VOXSTATE_LOG_LEVEL); JSON lines on stdout, secrets redacted
  -h, --help             show this help

Providers are chosen from the environment: OPENAI_API_KEY, OPENAI_BASE_URL, OLLAMA_BASE_URL /
OLLAMA_MODEL, GOOGLE_APPLICATION_CREDENTIALS; VOXSTATE_STT / VOXSTATE_LLM / VOXSTATE_TTS force one
(openai | google | local | scripted). With none set, the built-in offline voice runs: Flite TTS,
pocketsphinx STT (needs ffmpeg) and a scripted agent standing in for an LLM.
`;

type Out = (line: string) => void;

export async function main(argv: readonly string[], out: Out = (line) => process.stdout.write(`${line}\n`)): Promise<number> {
  const command = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'playbook') return runPlaybookCommand(rest, out, (line) => process.stderr.write(`${line}\n`));
  if (command === 'machines') return runMachinesCommand(rest, out, (line) => process.stderr.write(`${line}\n`));
  if (command === 'motion-server') {
    if (rest.includes('--help') || rest.includes('-h')) {
      await runMotionServer(['--help']);
      return 0;
    }
    await runMotionServer(rest);
    return 0;
  }
  const { values } = parseArgs({
    args: [...rest],
    options: {
      help: { type: 'boolean', short: 'h' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      config: { type: 'string', short: 'c' },
      playbook: { type: 'string' },
      'log-level': { type: 'string' },
    },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  switch (command) {
    case 'demo':
      await runDemo(out);
      return 0;
    case 'serve': {
      out('voxstate — starting the voice server');
      const running = await runServe(
        {
          ...(values.port === undefined ? {} : { port: values.port }),
          ...(values.host === undefined ? {} : { host: values.host }),
          ...(values.config === undefined ? {} : { config: values.config }),
          ...(values.playbook === undefined ? {} : { playbook: values.playbook }),
          ...(values['log-level'] === undefined ? {} : { logLevel: values['log-level'] }),
        },
        out,
      );
      const stop = (): void => {
        out('voxstate — stopping');
        void running.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      return 0;
    }
    default:
      process.stderr.write(`voxstate: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`voxstate: ${isVoxError(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
