/**
 * Loading a playbook from a module by path, for `voxstate --playbook <module>` and
 * `voxstate playbook validate|graph <module>`: the module's default export is the playbook (a
 * `definePlaybook` result or a plain definition); it may also export `offlineLlm`, the LLM to use
 * when none is configured (examples/playbook-restaurant/agent.ts). A `.ts` module is loaded
 * through tsx, from the built `voxstate` bin as from the sources under tsx.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.js';
import type { LlmProvider } from '../providers/types.js';
import { definePlaybook, isPlaybookOfThisLibrary, playbookIssuesOf } from './define.js';
import type { Playbook, PlaybookDefinition } from './types.js';

const TYPESCRIPT = /\.(?:ts|mts|cts|tsx)$/i;

let tsxRegistered: Promise<void> | undefined;

/** True when this process already runs under tsx (`tsx main.ts`, `node --import tsx`, NODE_OPTIONS). */
function underTsx(): boolean {
  const args = [...process.execArgv, ...(process.env['NODE_OPTIONS']?.split(/\s+/) ?? [])];
  return args.some((arg) => /(?:^|[\\/])tsx(?:[\\/]|$)/.test(arg));
}

/** Registers tsx's ESM loader once (a no-op under tsx). Node caches a failed import, so this comes first. */
function typeScriptLoader(path: string): Promise<void> {
  if (underTsx()) return Promise.resolve();
  tsxRegistered ??= import('tsx/esm/api').then(
    (api) => {
      api.register();
    },
    (error: unknown) => {
      tsxRegistered = undefined;
      throw new ConfigError('playbook', `${path} is TypeScript: loading it needs tsx (npm install --save-dev tsx), or compile it to JavaScript`, { cause: error });
    },
  );
  return tsxRegistered;
}

/** Imports a module by file path (relative to the working directory) and returns its namespace. */
export async function importModuleFile(path: string): Promise<Readonly<Record<string, unknown>>> {
  const absolute = isAbsolute(path) ? path : resolve(process.cwd(), path);
  if (!existsSync(absolute)) throw new ConfigError('playbook', `cannot import ${path}: no such file`);
  if (TYPESCRIPT.test(absolute)) await typeScriptLoader(path);
  try {
    return (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (error) {
    // definePlaybook threw while the module loaded: that error already lists every issue.
    if (playbookIssuesOf(error)) throw error;
    throw new ConfigError('playbook', `cannot import ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/**
 * The module's default export, as it is (for `validatePlaybook`). Throws a ConfigError when the
 * module cannot be imported, has no default export, or its definition throws while loading.
 */
export async function importPlaybookDefinition(path: string): Promise<unknown> {
  const namespace = await importModuleFile(path);
  if (!('default' in namespace) || namespace['default'] === undefined)
    throw new ConfigError('playbook', `${path} has no default export (export default definePlaybook({ … }))`);
  return namespace['default'];
}

/**
 * Loads and validates the playbook a module exports by default: a frozen `Playbook`. Throws a
 * ConfigError listing every error (see `definePlaybook`; `playbookIssuesOf` reads them).
 */
export async function loadPlaybookModule(path: string, options: { readonly warn?: (message: string) => void } = {}): Promise<Playbook> {
  const definition = await importPlaybookDefinition(path);
  // A definePlaybook result (it has stageIds) that this copy did not make: the module imports
  // another copy of voxstate.
  if (typeof definition === 'object' && definition !== null && 'stageIds' in definition && !isPlaybookOfThisLibrary(definition)) {
    options.warn?.(`${path} imports another copy of voxstate than the one running it; it runs, but with two copies of the library loaded (import 'voxstate' from the same install)`);
  }
  // Checked again even when the module called definePlaybook: it may be another copy of the library,
  // or a plain object.
  return definePlaybook(definition as PlaybookDefinition);
}

/** The module's `offlineLlm` export: the LLM to use when none is configured, if it has one. */
export async function loadOfflineLlm(path: string): Promise<LlmProvider | undefined> {
  const value = (await importModuleFile(path))['offlineLlm'];
  if (value === undefined) return undefined;
  if (typeof (value as Partial<LlmProvider> | null)?.stream !== 'function' || typeof (value as Partial<LlmProvider>).name !== 'string')
    throw new ConfigError('offlineLlm', `${path} exports an offlineLlm that is not an LlmProvider ({ name, stream(request) })`);
  return value as LlmProvider;
}
