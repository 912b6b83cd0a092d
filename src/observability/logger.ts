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

export const REDACTED = '[redacted]';

/**
 * Text that looks like a credential wherever it occurs: in an error message a provider's server
 * wrote, in a URL, in a header copied into a stack. Each is replaced, keeping what tells a reader
 * which kind of secret it was.
 */
const CREDENTIAL_PATTERNS: readonly (readonly [RegExp, string])[] = [
  // OpenAI-style keys (sk-…, sk-proj-…, pk-…, rk-…).
  [/\b(sk|pk|rk)-[A-Za-z0-9_*-]{6,}/g, '$1-[redacted]'],
  // Google API keys and OAuth access tokens.
  [/\bAIza[0-9A-Za-z_-]{20,}/g, REDACTED],
  [/\bya29\.[A-Za-z0-9_.-]+/g, `ya29.${REDACTED}`],
  // Authorization header values.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
  // Credentials in a URL (https://user:password@host).
  [/(\/\/)[^/@\s:"']+:[^/@\s"']+@/g, `$1${REDACTED}@`],
  // Keys and tokens in a query string.
  [/([?&](?:api[_-]?key|key|token|access_token|auth|secret|password|signature|sig)=)[^&\s"'#]+/gi, `$1${REDACTED}`],
  // voxstate session tokens (src/server/tokens.ts) and JWTs.
  [/\bvx1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, REDACTED],
  [/\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // A PEM private key (a service-account JSON pasted into an error).
  // A cut-off key ends at the closing quote of its JSON string (the line stays JSON) or at the end.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|(?=")|$)/g, REDACTED],
];

/** `text` with everything that looks like a credential replaced (CREDENTIAL_PATTERNS). */
export function redactCredentials(text: string): string {
  let out = text;
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Configured secrets shorter than this are not cut out of text: "k" would cut every k. */
export const MIN_SCRUBBED_SECRET = 8;

/**
 * Cuts secrets out of text and values: the configured ones (exact strings: provider keys, the
 * auth secret, the Motion Server key) and anything that looks like a credential. Values are
 * walked (objects, arrays, errors — serialized as pino would); binary data is left alone.
 */
export class SecretScrubber {
  readonly #secrets: string[];

  constructor(secrets: Iterable<string | undefined> = []) {
    const unique = new Set<string>();
    for (const secret of secrets) if (typeof secret === 'string' && secret.length >= MIN_SCRUBBED_SECRET) unique.add(secret);
    // Longest first: a secret that contains another is cut whole.
    this.#secrets = [...unique].sort((a, b) => b.length - a.length);
  }

  get size(): number {
    return this.#secrets.length;
  }

  text(text: string): string {
    let out = text;
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return redactCredentials(out);
  }

  value(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') return this.text(value);
    if (typeof value !== 'object' || value === null) return value;
    if (depth >= 8) return '[…]';
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
    if (value instanceof Error) return this.value(pino.stdSerializers.err(value), depth + 1);
    if (Array.isArray(value)) return value.map((item: unknown) => this.value(item, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = this.value(item, depth + 1);
    return out;
  }
}

type LogFormatter = (object: object) => object;

/** The `formatters.log` a logger has (a child that sets its own replaces it, so it is chained by hand). */
function logFormatterOf(logger: Logger): LogFormatter | undefined {
  const formatters = (logger as unknown as Record<symbol, { log?: LogFormatter } | undefined>)[pino.symbols.formattersSym];
  return formatters?.log;
}

/**
 * A child of `logger` that never writes a secret: the redaction paths, and every field value and
 * error (message, stack, causes, properties such as a provider's response body) scrubbed by
 * `scrubber`. For loggers voxstate did not create (the application's own pino): message strings
 * are voxstate's constant texts; the data goes in fields.
 */
export function scrubbingLogger(logger: Logger, scrubber: SecretScrubber): Logger {
  const parent = logFormatterOf(logger);
  return logger.child(
    {},
    {
      redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
      serializers: { err: (error: unknown) => scrubber.value(error instanceof Error ? pino.stdSerializers.err(error) : error) },
      formatters: { log: (object: object) => scrubber.value(parent === undefined ? object : parent(object)) as object },
    },
  );
}

export interface CreateLoggerOptions {
  /** Default: VOXSTATE_LOG_LEVEL, else `info`. */
  readonly level?: LoggerOptions['level'];
  readonly name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  readonly destination?: NodeJS.WritableStream;
  /**
   * Strings cut out of every line written (provider keys, the auth secret; at least
   * MIN_SCRUBBED_SECRET characters), besides the redacted keys and anything that looks like a credential.
   */
  readonly secrets?: readonly string[];
}

/** The one way voxstate creates loggers: pino with secrets redacted. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const env = process.env['VOXSTATE_LOG_LEVEL'];
  const level = options.level ?? (env === undefined || env === '' ? 'info' : parseLogLevel('VOXSTATE_LOG_LEVEL', env));
  const scrubber = new SecretScrubber(options.secrets);
  const settings: LoggerOptions = {
    level,
    name: options.name ?? 'voxstate',
    redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
    // The last look at each finished line, message included, for this logger and all its children.
    hooks: { streamWrite: (line: string) => scrubber.text(line) },
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
  // The base's own formatter (the server's secret scrubbing) still runs, after this one.
  const parent = logFormatterOf(base);
  return base.child(
    { session },
    {
      formatters: {
        log: (object: object) => {
          const { turn, state } = bindings();
          const line = { ...(turn === undefined ? {} : { turn }), ...(state === undefined || state === '' ? {} : { state }), ...object };
          return parent === undefined ? line : parent(line);
        },
      },
    },
  );
}
