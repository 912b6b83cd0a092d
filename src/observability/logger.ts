import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';
import { ConfigError } from '../errors.js';

export type Logger = PinoLogger;

/** Keys whose values never reach a log line (provider and Motion Server keys, auth and resume tokens, …). */
export const SECRET_KEYS = [
  'apiKey',
  'api_key',
  'token',
  'accessToken',
  'access_token',
  'resumeToken',
  'sessionToken',
  'authorization',
  'Authorization',
  'x-api-key',
  'credentials',
  'password',
  'secret',
] as const;

/** How deep in a logged object a secret key is still found (`apiKey`, `x.apiKey`, `x.y.apiKey`). */
const SECRET_DEPTH = 3;

/** `key` under `depth` wildcards, in pino's path syntax (`*.*.apiKey`, `*["x-api-key"]`). */
function redactPath(key: string, depth: number): string {
  const wildcards = Array.from({ length: depth }, () => '*').join('.');
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return wildcards === '' ? key : `${wildcards}.${key}`;
  return `${wildcards}["${key}"]`;
}

/** The pino redaction paths: every secret key at the top level and up to SECRET_DEPTH - 1 objects down. */
export const REDACTED_PATHS: readonly string[] = SECRET_KEYS.flatMap((key) => Array.from({ length: SECRET_DEPTH }, (_, depth) => redactPath(key, depth)));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A log level name, or a ConfigError naming `field`. */
export function parseLogLevel(field: string, value: string): LogLevel {
  const level = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError(field, `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
  return level as LogLevel;
}

export interface CreateLoggerOptions {
  /** Default: VOXSTATE_LOG_LEVEL, else `info`. */
  readonly level?: LoggerOptions['level'];
  readonly name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  readonly destination?: NodeJS.WritableStream;
}

/** The one way voxstate creates loggers: pino with secrets redacted. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const env = process.env['VOXSTATE_LOG_LEVEL'];
  const level = options.level ?? (env === undefined || env === '' ? 'info' : parseLogLevel('VOXSTATE_LOG_LEVEL', env));
  const settings: LoggerOptions = {
    level,
    name: options.name ?? 'voxstate',
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}

/** A logger that drops everything; the default for library objects created without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** What a session logger adds to each line, read when the line is written. */
export interface SessionBindings {
  readonly turn: number | undefined;
  readonly state: string | undefined;
}

/**
 * The logger of one session: `session` is bound; `turn` and `state` are read from `bindings` as
 * each line is written, so every line (of this logger and of its children) carries the turn in
 * progress and the session's state at that moment. A field the line itself sets wins.
 */
export function sessionLogger(base: Logger, session: string, bindings: () => SessionBindings): Logger {
  return base.child(
    { session },
    {
      formatters: {
        log: (object: object) => {
          const { turn, state } = bindings();
          return { ...(turn === undefined ? {} : { turn }), ...(state === undefined || state === '' ? {} : { state }), ...object };
        },
      },
    },
  );
}
