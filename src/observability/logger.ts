import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS = [
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'resumeToken',
  '*.resumeToken',
  'sessionToken',
  '*.sessionToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'credentials',
  '*.credentials',
] as const;

export interface CreateLoggerOptions {
  readonly level?: LoggerOptions['level'];
  readonly name?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  readonly destination?: NodeJS.WritableStream;
}

/** The one way voxstate creates loggers: pino with secrets redacted. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const settings: LoggerOptions = {
    level: options.level ?? process.env['VOXSTATE_LOG_LEVEL'] ?? 'info',
    name: options.name ?? 'voxstate',
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}

/** A logger that drops everything; the default for library objects created without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
