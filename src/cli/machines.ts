/**
 * `voxstate machines export`: print one of voxstate's statecharts as Mermaid or JSON. Thin: the
 * work is in src/inspect/statechart.ts.
 */
import { parseArgs } from 'node:util';
import type { AnyStateMachine } from 'xstate';
import { motionLinkMachine } from '../../machines/motion-link.js';
import { createPlaybookMachine } from '../../machines/playbook.js';
import { replyMachine } from '../../machines/reply.js';
import { sessionMachine } from '../../machines/session.js';
import { statechartMermaid, statechartOf } from '../inspect/statechart.js';
import { loadPlaybookModule } from '../playbook/load.js';

export const MACHINES_HELP = `Usage:
  voxstate machines export [--machine <name>] [--playbook <module>] [--format mermaid|json]

Prints a statechart: Mermaid stateDiagram-v2 (default) or JSON { id, nodes, edges }.

  --machine <name>     session (default), reply, motion (the Motion Server link) or playbook
  --playbook <module>  the playbook module (its default export) whose compiled machine to print;
                       implies --machine playbook. Its stages and their transitions are drawn by
                       voxstate playbook graph <module>
  --format <format>    mermaid (default) or json`;

const MACHINE_NAMES = ['session', 'reply', 'motion', 'playbook'] as const;
type MachineName = (typeof MACHINE_NAMES)[number];

type Out = (line: string) => void;

export async function runMachinesCommand(argv: readonly string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      machine: { type: 'string', short: 'm' },
      playbook: { type: 'string' },
      format: { type: 'string', short: 'f' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(MACHINES_HELP);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action !== 'export' || extra.length > 0) {
    err(`voxstate machines: ${action === undefined ? 'which action?' : `unknown action '${[action, ...extra].join(' ')}'`}\n\n${MACHINES_HELP}`);
    return 2;
  }
  const format = values.format ?? 'mermaid';
  if (format !== 'mermaid' && format !== 'json') {
    err(`voxstate machines: --format must be mermaid or json, got '${format}'`);
    return 2;
  }
  const name = values.machine ?? (values.playbook === undefined ? 'session' : 'playbook');
  if (!(MACHINE_NAMES as readonly string[]).includes(name)) {
    err(`voxstate machines: --machine must be one of ${MACHINE_NAMES.join(', ')}, got '${name}'`);
    return 2;
  }
  if (name === 'playbook' && values.playbook === undefined) {
    err('voxstate machines: --machine playbook needs --playbook <module>');
    return 2;
  }
  if (name !== 'playbook' && values.playbook !== undefined) {
    err(`voxstate machines: --playbook applies to --machine playbook, not ${name}`);
    return 2;
  }
  const chart = statechartOf(await machineNamed(name as MachineName, values.playbook));
  out(format === 'json' ? JSON.stringify(chart, null, 2) : statechartMermaid(chart));
  return 0;
}

async function machineNamed(name: MachineName, playbookPath: string | undefined): Promise<AnyStateMachine> {
  switch (name) {
    case 'session':
      return sessionMachine;
    case 'reply':
      return replyMachine;
    case 'motion':
      return motionLinkMachine;
    case 'playbook': {
      // Errors throw (a ConfigError listing them): main prints it and exits 1.
      const playbook = await loadPlaybookModule(playbookPath ?? '', { warn: (message) => process.stderr.write(`note: ${message}\n`) });
      return createPlaybookMachine(playbook, { now: () => Date.now() });
    }
  }
}
