#!/usr/bin/env node
/**
 * The `voxstate` command. Thin: parse flags, call the library, set process.exitCode.
 */
import { parseArgs } from 'node:util';
import { runDemo } from './demo.js';

const HELP = `voxstate — actor-model session runtime for real-time voice AI

Usage:
  voxstate demo          run a scripted conversation through the real session actor
                         (virtual time, fake providers) and print states, turns and history
  voxstate --help        show this help

Options:
  -h, --help             show this help
`;

export async function main(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(HELP);
    return 0;
  }
  const command = positionals[0] ?? 'demo';
  switch (command) {
    case 'demo':
      await runDemo(out);
      return 0;
    default:
      process.stderr.write(`voxstate: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly || process.argv[1]?.endsWith('/voxstate')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`voxstate: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
