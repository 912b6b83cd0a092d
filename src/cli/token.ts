/**
 * `voxstate token create --sub <principal> --expires-in <duration> [--scope <s>]...`: prints one
 * session token signed with VOXSTATE_AUTH_SECRET, the secret `voxstate serve` checks hello tokens
 * with. The secret is read from the environment only: a flag would show in `ps` and shell history.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { createSessionToken, MIN_SECRET_BYTES } from '../server/tokens.js';

export const AUTH_SECRET_ENV = 'VOXSTATE_AUTH_SECRET';

export const TOKEN_USAGE = `Usage: voxstate token create --sub <principal> [--expires-in <duration>] [--scope <scope>]...

Prints a session token for session.hello.token, signed with ${AUTH_SECRET_ENV} (env only; at least
32 bytes). --expires-in takes ms or a duration: 90s, 15m, 1h, 7d (default 1h). The token is a
bearer secret until it expires: hand it to one client, do not log it.`;

/** The auth secret of the environment (undefined when it is not set), or a ConfigError naming the variable when it is too short. */
export function authSecretFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const secret = env[AUTH_SECRET_ENV];
  if (secret === undefined || secret === '') return undefined;
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_SECRET_BYTES) {
    throw new ConfigError(AUTH_SECRET_ENV, `must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes}); generate one with: openssl rand -base64 32`);
  }
  return secret;
}

export function runTokenCommand(argv: readonly string[], out: (line: string) => void, env: NodeJS.ProcessEnv = process.env): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      help: { type: 'boolean', short: 'h' },
      sub: { type: 'string' },
      'expires-in': { type: 'string' },
      scope: { type: 'string', multiple: true },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    out(TOKEN_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'create') throw new ConfigError('token', `expected "voxstate token create", got ${JSON.stringify(positionals.join(' '))}\n\n${TOKEN_USAGE}`);
  if (values.sub === undefined || values.sub === '') throw new ConfigError('--sub', 'is required: the principal the token speaks for');
  const secret = authSecretFromEnv(env);
  if (secret === undefined) throw new ConfigError(AUTH_SECRET_ENV, 'is not set: export the secret `voxstate serve` checks tokens with');
  const expiresIn = values['expires-in'] ?? '1h';
  out(createSessionToken({ sub: values.sub, expiresIn: /^\d+$/.test(expiresIn) ? Number(expiresIn) : expiresIn, ...(values.scope === undefined ? {} : { scopes: values.scope }) }, secret));
  return 0;
}
