#!/usr/bin/env node
/**
 * The `voxstate` command. Thin: parse flags, call the library, set process.exitCode.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isVoxError } from '../errors.js';
import { MOTION_SERVER_USAGE, runMotionServer } from '../motion/local-server/run.js';
import { runDemo } from './demo.js';
import { runMachinesCommand } from './machines.js';
import { runPlaybookCommand } from './playbook.js';
import { runServe } from './serve.js';
import { runTokenCommand } from './token.js';

export const HELP = `voxstate — actor-model session runtime for real-time voice AI

Usage:
  voxstate [serve] [options]     run the voice server (default command)
  voxstate demo                  a scripted conversation through the real session actor,
                                 in virtual time with fake providers (states, turns, history)
  voxstate motion-server --port <p> --api-key <k> [--fault <spec>]
                                 a local Spatius-compatible Motion Server for offline AvatarKit tests
                                 (voxstate motion-server --help lists its flags and faults)
  voxstate playbook validate <module>
                                 check a playbook module (its default export): one line per issue,
                                 "error|warning stage.field: message"; exit 1 on errors
  voxstate playbook graph <module>
                                 print the playbook as a Mermaid stateDiagram-v2
  voxstate token create --sub <principal> [--expires-in 1h] [--scope <s>]...
                                 print a session token signed with VOXSTATE_AUTH_SECRET (env only)
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
      --allowed-origin <origin>
                         a web page origin (https://app.example.com) allowed to open the WebSocket,
                         besides the server's own and loopback ones; repeatable ('*' allows every
                         page: unsafe). Env VOXSTATE_ALLOWED_ORIGINS (comma-separated)
      --trust-proxy <n>  count clients by X-Forwarded-For behind n reverse proxies (true = 1;
                         env VOXSTATE_TRUST_PROXY); only when every request passes them
      --webrtc-workers <n>
                         worker threads for WebRTC transports (default one per core; 0 = the
                         main thread). Env VOXSTATE_WEBRTC_WORKERS
      --session-store <url>
                         where sessions are kept for a resume: redis://host:port (shared by every
                         node behind a load balancer; a session resumes on any of them) or memory
                         (default: this process only). Env VOXSTATE_SESSION_STORE
      --log-level <level>
                         fatal | error | warn | info | debug | trace | silent (default warn;
                         env VOXSTATE_LOG_LEVEL); JSON lines on stdout, secrets redacted
  -h, --help             show this help

Providers are chosen from the environment: OPENAI_API_KEY, OPENAI_BASE_URL, OLLAMA_BASE_URL /
OLLAMA_MODEL, GOOGLE_APPLICATION_CREDENTIALS; VOXSTATE_STT / VOXSTATE_LLM / VOXSTATE_TTS force one
(openai | google | local | scripted). With none set, the built-in offline voice runs: Flite TTS,
pocketsphinx STT (needs ffmpeg) and a scripted agent standing in for an LLM.

Security: any client may connect unless VOXSTATE_AUTH_SECRET (env only, at least 32 bytes) is set;
then session.hello needs a token from \`voxstate token create\`. Browsers are refused (HTTP 403) unless
the page's origin is the server's own, a loopback one or an --allowed-origin.
`;

type Out = (line: string) => void;

export async function main(argv: readonly string[], out: Out = (line) => process.stdout.write(`${line}\n`)): Promise<number> {
  const command = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'playbook') return runPlaybookCommand(rest, out, (line) => process.stderr.write(`${line}\n`));
  if (command === 'token') return runTokenCommand(rest, out);
  if (command === 'machines') return runMachinesCommand(rest, out, (line) => process.stderr.write(`${line}\n`));
  if (command === 'motion-server') {
    if (rest.includes('--help') || rest.includes('-h')) {
      out(MOTION_SERVER_USAGE);
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
      'session-store': { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'trust-proxy': { type: 'string' },
      'webrtc-workers': { type: 'string' },
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
          ...(values['session-store'] === undefined ? {} : { sessionStore: values['session-store'] }),
          ...(values['allowed-origin'] === undefined ? {} : { allowedOrigin: values['allowed-origin'] }),
          ...(values['trust-proxy'] === undefined ? {} : { trustProxy: values['trust-proxy'] }),
          ...(values['webrtc-workers'] === undefined ? {} : { webrtcWorkers: values['webrtc-workers'] }),
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
