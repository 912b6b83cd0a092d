/**
 * `voxstate motion-server`: the local Motion Server as a process of its own.
 * The CLI calls `runMotionServer(argv)`; it resolves once the server listens and keeps running
 * until `stop()` (or SIGINT/SIGTERM when `handleSignals` is left on).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../errors.js';
import { createLogger, type Logger } from '../../observability/logger.js';
import { FAULT_USAGE, parseFaultFlags } from './faults.js';
import { LocalMotionServer, type LocalMotionServerInfo } from './server.js';

export const MOTION_SERVER_USAGE = `Usage: voxstate motion-server [options]

  --port <n>                  port to listen on (default 7700; 0 picks a free one)
  --host <addr>               address to bind (default 127.0.0.1)
  --api-key <key>             API key clients exchange for session tokens (or VOXSTATE_MOTION_API_KEY)
  --app-id <id>               app id clients must present (default "local")
  --avatar <id>               accepted avatar id; repeat for several (default: any)
  --keyframes-per-message <n> keyframes in one animation envelope (default 1)
  --idle-timeout-ms <n>       close idle sessions with 4002 after this long (default 300000)
  --fault <spec>              inject a fault (repeatable; see below)
  -h, --help                  show this help

${FAULT_USAGE}

Examples:
  voxstate motion-server --api-key dev --fault close-before-confirm,times=1
  voxstate motion-server --api-key dev --fault drop-after=2s --fault frame-delay=20ms
`;

export interface RunMotionServerOptions {
  /** Where the one-line "listening" notice goes. Default process.stdout. */
  readonly out?: NodeJS.WritableStream;
  readonly logger?: Logger;
  /** Stop on SIGINT/SIGTERM. Default true. */
  readonly handleSignals?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunningMotionServer {
  readonly server: LocalMotionServer;
  readonly info: LocalMotionServerInfo;
  stop(): Promise<void>;
}

function integer(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new ConfigError(flag, `expected a non-negative integer, got ${JSON.stringify(value)}`);
  return parsed;
}

export async function runMotionServer(argv: readonly string[], options: RunMotionServerOptions = {}): Promise<RunningMotionServer> {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'api-key': { type: 'string' },
      'app-id': { type: 'string' },
      avatar: { type: 'string', multiple: true },
      'keyframes-per-message': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      fault: { type: 'string', multiple: true },
    },
  });
  // Parsed before anything starts, so a bad --fault is reported without opening a port.
  const faults = parseFaultFlags(values.fault ?? []);
  const env = options.env ?? process.env;
  const apiKey = values['api-key'] ?? env['VOXSTATE_MOTION_API_KEY'];
  if (apiKey === undefined || apiKey === '') throw new ConfigError('--api-key', `required\n\n${MOTION_SERVER_USAGE}`);
  const server = new LocalMotionServer();
  const info = await server.start({
    port: integer('--port', values.port, 7700),
    host: values.host ?? '127.0.0.1',
    apiKey,
    appId: values['app-id'] ?? 'local',
    ...(values.avatar === undefined ? {} : { avatars: values.avatar }),
    keyframesPerMessage: Math.max(1, integer('--keyframes-per-message', values['keyframes-per-message'], 1)),
    idleTimeoutMs: integer('--idle-timeout-ms', values['idle-timeout-ms'], 300_000),
    faults,
    logger: options.logger ?? createLogger({ name: 'voxstate-motion-server' }),
  });
  (options.out ?? process.stdout).write(
    `local Motion Server on ${info.url}\n  consoleEndpointUrl: ${info.consoleEndpointUrl}\n  ingressEndpointUrl: ${info.ingressEndpointUrl}\n`,
  );
  const onSignal = (): void => {
    void stop();
  };
  const stop = async (): Promise<void> => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server.stop();
  };
  if (options.handleSignals !== false) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { server, info, stop };
}
