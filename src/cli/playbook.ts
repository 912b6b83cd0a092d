/**
 * `voxstate playbook validate <module>` and `voxstate playbook graph <module>`: check a playbook
 * module (its default export) and draw it. Thin: the work is in src/playbook/.
 */
import { parseArgs } from 'node:util';
import { formatPlaybookIssue, playbookIssuesOf, validatePlaybook, type PlaybookIssue } from '../playbook/define.js';
import { playbookGraph } from '../playbook/graph.js';
import { importPlaybookDefinition, loadPlaybookModule } from '../playbook/load.js';

export const PLAYBOOK_HELP = `Usage:
  voxstate playbook validate <module>   check the playbook the module exports by default: prints
                                        "error|warning stage.field: message" per issue, exits 1 on errors
  voxstate playbook graph <module>      print the playbook as a Mermaid stateDiagram-v2

<module> is a .js, .mjs or .ts file (TypeScript is loaded through tsx).`;

type Out = (line: string) => void;

export async function runPlaybookCommand(argv: readonly string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  const [action, path, ...extra] = positionals;
  if (values.help) {
    out(PLAYBOOK_HELP);
    return 0;
  }
  if ((action !== 'validate' && action !== 'graph') || path === undefined || extra.length > 0) {
    err(action === undefined || action === 'validate' || action === 'graph' ? `voxstate playbook: which module?\n\n${PLAYBOOK_HELP}` : `voxstate playbook: unknown action '${action}'\n\n${PLAYBOOK_HELP}`);
    return 2;
  }
  return action === 'validate' ? validate(path, out) : graph(path, out);
}

async function validate(path: string, out: Out): Promise<number> {
  let definition: unknown;
  try {
    definition = await importPlaybookDefinition(path);
  } catch (error) {
    // The module called definePlaybook, which threw while it loaded: report what it found.
    const issues = playbookIssuesOf(error);
    if (!issues) throw error;
    return report(path, undefined, issues, out);
  }
  return report(path, definition, validatePlaybook(definition), out);
}

function report(path: string, definition: unknown, issues: readonly PlaybookIssue[], out: Out): number {
  for (const issue of issues) out(formatPlaybookIssue(issue));
  const errors = issues.filter((issue) => issue.severity === 'error').length;
  const warnings = issues.length - errors;
  const record = typeof definition === 'object' && definition !== null ? (definition as Record<string, unknown>) : {};
  const name = typeof record['id'] === 'string' ? `playbook '${record['id']}'` : path;
  const shape =
    typeof record['stages'] === 'object' && record['stages'] !== null && Array.isArray(record['transitions'])
      ? ` (${Object.keys(record['stages']).length} stages, ${record['transitions'].length} transitions)`
      : '';
  const counts = issues.length === 0 ? 'no problems found' : `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`;
  out(`${name}${shape}: ${counts}`);
  return errors > 0 ? 1 : 0;
}

async function graph(path: string, out: Out): Promise<number> {
  // Errors throw (a ConfigError listing them): main prints it and exits 1.
  out(playbookGraph(await loadPlaybookModule(path, { warn: (message) => process.stderr.write(`note: ${message}\n`) })));
  return 0;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
