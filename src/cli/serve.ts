/**
 * `voxstate serve`: the voice server with providers chosen from the environment (real ones when
 * keys are set, the built-in offline voice otherwise), configured by flags, environment variables
 * and an optional JSON config file — in that order of precedence.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { createLogger, type Logger, parseLogLevel } from '../observability/logger.js';
import { detectProviders } from '../providers/detect.js';
import { randomBytes } from 'node:crypto';
import { LocalMotionServer } from '../motion/local-server/index.js';
import type { MotionLinkOptions } from '../motion/link.js';
import { loadOfflineLlm, loadPlaybookModule } from '../playbook/load.js';
import type { Playbook } from '../playbook/types.js';
import { PocketsphinxStt } from '../providers/local/index.js';
import type { LlmProvider } from '../providers/types.js';
import { VoiceServer, type VoiceServerOptions } from '../server/index.js';
import { RedisSessionStore } from '../session/redis-store.js';
import { tokenAuth } from '../server/tokens.js';
import { AUTH_SECRET_ENV, authSecretFromEnv } from './token.js';

export interface ServeFlags {
  readonly port?: string;
  readonly host?: string;
  readonly config?: string;
  /** A module whose default export is the playbook to run (`--playbook`). */
  readonly playbook?: string;
  /** `--log-level`; wins over VOXSTATE_LOG_LEVEL. */
  readonly logLevel?: string;
  /** `--session-store redis://host:port`; wins over VOXSTATE_SESSION_STORE. Default: in memory (this process). */
  readonly sessionStore?: string;
  /** `--allowed-origin` (repeatable); wins over VOXSTATE_ALLOWED_ORIGINS and the file's `allowedOrigins`. */
  readonly allowedOrigin?: readonly string[];
  /** `--trust-proxy`: true, false or the number of proxies; wins over VOXSTATE_TRUST_PROXY and the file's `trustProxy`. */
  readonly trustProxy?: string;
  /** `--webrtc-workers <n>`: WebRTC transport worker threads (0 = the main thread); wins over VOXSTATE_WEBRTC_WORKERS and the file's `webrtcWorkers`. */
  readonly webrtcWorkers?: string;
}

/** The CLI's log level: `--log-level`, else VOXSTATE_LOG_LEVEL, else `warn` (the command prints its own summary). */
export function serveLogLevel(flags: ServeFlags, env: NodeJS.ProcessEnv): string {
  if (flags.logLevel !== undefined) return parseLogLevel('--log-level', flags.logLevel);
  const fromEnv = env['VOXSTATE_LOG_LEVEL'];
  return fromEnv === undefined || fromEnv === '' ? 'warn' : parseLogLevel('VOXSTATE_LOG_LEVEL', fromEnv);
}

/** The parts of VoiceServerOptions a JSON file or the environment can set. */
export interface FileConfig {
  port?: number;
  host?: string;
  path?: string;
  systemPrompt?: string;
  vad?: VoiceServerOptions['vad'];
  turn?: VoiceServerOptions['turn'];
  session?: { ttlMs?: number; limits?: Record<string, number> };
  iceServers?: VoiceServerOptions['iceServers'];
  maxMessageBytes?: number;
  maxMessagesPerSecond?: number;
  /** `GET /metrics` (default true). */
  metrics?: boolean;
  /** Web pages allowed to open the WebSocket besides the server's own and loopback ones. */
  allowedOrigins?: string[];
  /** Reverse proxies in front of the server whose X-Forwarded-For is believed. */
  trustProxy?: boolean | number;
  /** Inbound audio limits (frame size, rate). */
  audioInput?: VoiceServerOptions['audioInput'];
  /** Close a connection that sends nothing for this long (0 = never). */
  connectionIdleTimeoutMs?: number;
  /** Concurrent calls per provider kind, and how long a call may wait for a slot. */
  providerLimits?: VoiceServerOptions['providers']['limits'];
  /** WebRTC transport worker threads (`webrtc.workers`; 0 = the main thread). Default: one per core. */
  webrtcWorkers?: number;
}

/** `true`, `false` or a number of proxies, from a flag or the environment. */
function trustProxyValue(field: string, value: string | undefined): boolean | number | undefined {
  if (value === undefined || value === '') return undefined;
  const text = value.trim().toLowerCase();
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^\d+$/.test(text)) return Number(text);
  throw new ConfigError(field, `expected true, false or the number of proxies, got ${JSON.stringify(value)}`);
}

/** A comma-separated list (VOXSTATE_ALLOWED_ORIGINS), or undefined when unset. */
function listValue(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/**
 * The secrets of the environment that must never reach a log line: provider keys, the Motion
 * Server key, the auth secret (the logger and the server cut them out of what they write).
 */
export function environmentSecrets(env: NodeJS.ProcessEnv): string[] {
  return ['OPENAI_API_KEY', 'SPATIUS_API_KEY', AUTH_SECRET_ENV, 'GOOGLE_API_KEY']
    .map((name) => env[name]?.trim())
    .filter((value): value is string => value !== undefined && value !== '');
}

/**
 * The session store the CLI runs with: a Redis URL (`--session-store`, else VOXSTATE_SESSION_STORE)
 * shared with the other nodes, or undefined for the in-memory default. `memory` asks for the default.
 */
export function sessionStoreUrl(flags: ServeFlags, env: NodeJS.ProcessEnv): string | undefined {
  const field = flags.sessionStore === undefined ? 'VOXSTATE_SESSION_STORE' : '--session-store';
  const value = (flags.sessionStore ?? env['VOXSTATE_SESSION_STORE'])?.trim();
  if (value === undefined || value === '' || value === 'memory') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(field, 'expected redis://host:port (or rediss://, or memory)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new ConfigError(field, `expected redis://host:port (or rediss://, or memory), got a ${url.protocol} URL`);
  return value;
}

/** The URL as it may be printed: without its password. */
function printableUrl(value: string): string {
  const url = new URL(value);
  if (url.password !== '') url.password = '***';
  return url.toString();
}

const DEFAULT_PROMPT = 'You are a friendly voice assistant. Answer in one or two short spoken sentences.';

function integer(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) throw new ConfigError(field, `expected a port number, got ${JSON.stringify(value)}`);
  return parsed;
}

/** A count of threads from a flag or the environment: a whole number ≥ 0. */
function threadCount(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new ConfigError(field, `expected a whole number of threads (0 = the main thread), got ${JSON.stringify(value)}`);
  return parsed;
}

export async function loadConfig(flags: ServeFlags, env: NodeJS.ProcessEnv): Promise<FileConfig> {
  let file: FileConfig = {};
  const path = flags.config ?? env['VOXSTATE_CONFIG'];
  if (path !== undefined) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new ConfigError('--config', `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      file = JSON.parse(text) as FileConfig;
    } catch (error) {
      throw new ConfigError('--config', `${path} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new ConfigError('--config', `${path} must hold a JSON object`);
  }
  const port = integer('--port', flags.port) ?? integer('VOXSTATE_PORT', env['VOXSTATE_PORT']) ?? file.port;
  const host = flags.host ?? env['VOXSTATE_HOST'] ?? file.host;
  const systemPrompt = env['VOXSTATE_SYSTEM_PROMPT'] ?? file.systemPrompt;
  const allowedOrigins = (flags.allowedOrigin !== undefined && flags.allowedOrigin.length > 0 ? [...flags.allowedOrigin] : undefined) ?? listValue(env['VOXSTATE_ALLOWED_ORIGINS']) ?? file.allowedOrigins;
  const trustProxy = trustProxyValue('--trust-proxy', flags.trustProxy) ?? trustProxyValue('VOXSTATE_TRUST_PROXY', env['VOXSTATE_TRUST_PROXY']) ?? file.trustProxy;
  const webrtcWorkers = threadCount('--webrtc-workers', flags.webrtcWorkers) ?? threadCount('VOXSTATE_WEBRTC_WORKERS', env['VOXSTATE_WEBRTC_WORKERS']) ?? file.webrtcWorkers;
  return {
    ...file,
    ...(port === undefined ? {} : { port }),
    ...(host === undefined ? {} : { host }),
    ...(systemPrompt === undefined ? {} : { systemPrompt }),
    ...(allowedOrigins === undefined ? {} : { allowedOrigins }),
    ...(trustProxy === undefined ? {} : { trustProxy }),
    ...(webrtcWorkers === undefined ? {} : { webrtcWorkers }),
  };
}

/**
 * The avatar link: the real Spatius service when SPATIUS_API_KEY is set (SPATIUS_APP_ID and
 * SPATIUS_AVATAR_ID are then required, SPATIUS_REGION optional), otherwise an embedded local Motion
 * Server on a free loopback port. VOXSTATE_AVATAR=off turns the avatar off.
 */
export async function resolveMotion(
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<{ options: MotionLinkOptions | undefined; local: LocalMotionServer | undefined; description: string }> {
  const switchValue = env['VOXSTATE_AVATAR']?.trim().toLowerCase();
  if (switchValue === 'off' || switchValue === 'false' || switchValue === '0') {
    return { options: undefined, local: undefined, description: 'off (VOXSTATE_AVATAR=off)' };
  }
  const apiKey = env['SPATIUS_API_KEY']?.trim();
  if (apiKey) {
    const appId = env['SPATIUS_APP_ID']?.trim();
    const avatarId = env['SPATIUS_AVATAR_ID']?.trim();
    if (!appId) throw new ConfigError('SPATIUS_APP_ID', 'is required when SPATIUS_API_KEY is set');
    if (!avatarId) throw new ConfigError('SPATIUS_AVATAR_ID', 'is required when SPATIUS_API_KEY is set');
    const region = env['SPATIUS_REGION']?.trim();
    return {
      options: { apiKey, appId, avatarId, ...(region ? { region } : {}) },
      local: undefined,
      description: `Spatius Motion Server (region ${region || 'us-west'}, avatar ${avatarId})`,
    };
  }
  const local = new LocalMotionServer();
  const key = randomBytes(24).toString('base64url');
  const info = await local.start({ apiKey: key, appId: 'voxstate-local', logger });
  return {
    options: { apiKey: key, appId: 'voxstate-local', avatarId: 'local-avatar', consoleEndpointUrl: info.consoleEndpointUrl, ingressEndpointUrl: info.ingressEndpointUrl },
    local,
    description: `embedded local Motion Server at ${info.url} (no SPATIUS_API_KEY set)`,
  };
}

/** The built-in scripted agent (or another stand-in) rather than a real model. */
function isStandIn(llm: LlmProvider): boolean {
  return (llm as { scripted?: unknown }).scripted === true;
}

/** The playbook's phrases and the keywords of its keyword transitions. */
export function playbookPhrases(playbook: Playbook): string[] {
  const keywords = playbook.transitions.flatMap((t) => (t.condition.type === 'keyword' ? t.condition.keywords : []));
  return [...new Set([...(playbook.phrases ?? []), ...keywords].map((p) => p.trim()).filter((p) => p.length > 0))];
}

function describePlaybook(playbook: Playbook): string {
  return `'${playbook.id}' (${playbook.stageIds.length} stages: ${playbook.stageIds.join(', ')})`;
}

export interface RunningServer {
  readonly server: VoiceServer;
  readonly url: string;
  stop(): Promise<void>;
}

export async function runServe(
  flags: ServeFlags,
  out: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  // The command prints its own summary; the JSON log carries warnings and errors unless asked for more.
  logger: Logger = createLogger({ level: serveLogLevel(flags, env), secrets: environmentSecrets(env) }),
): Promise<RunningServer> {
  const config = await loadConfig(flags, env);
  // Checked before anything starts: a secret too short to sign with stops here.
  const authSecret = authSecretFromEnv(env);
  // Before anything starts: a broken playbook stops here with every error listed.
  const playbook = flags.playbook === undefined ? undefined : await loadPlaybookModule(flags.playbook, { warn: (message) => out(`  note: ${message}`) });
  const detected = detectProviders(env, {}, logger);
  const offlineLlm = flags.playbook === undefined || !isStandIn(detected.providers.llm) ? undefined : await loadOfflineLlm(flags.playbook);
  for (const choice of detected.choices) {
    if (choice.kind === 'llm' && offlineLlm) out(`  LLM ${offlineLlm.name} — no LLM configured: the playbook module's offlineLlm stands in`);
    else out(`  ${choice.kind.toUpperCase().padEnd(3)} ${choice.name} — ${choice.reason}`);
  }
  // The offline recognizer hears the playbook's phrases too (its language model is built from them).
  const vocabulary = playbook === undefined ? [] : playbookPhrases(playbook);
  const stt = detected.providers.stt instanceof PocketsphinxStt && vocabulary.length > 0 ? new PocketsphinxStt({ offlineVocabulary: vocabulary }) : detected.providers.stt;
  const providers = { ...detected.providers, stt, ...(offlineLlm ? { llm: offlineLlm } : {}), ...(config.providerLimits === undefined ? {} : { limits: config.providerLimits }) };
  if (playbook) out(`  PLAYBOOK ${describePlaybook(playbook)} from ${flags.playbook}`);
  if (stt instanceof PocketsphinxStt) {
    const probe = await stt.probe();
    if (!probe.ok) out(`  note: speech recognition is unavailable: ${probe.message}. Typed input (user.text) still works.`);
    // The in-domain language model is written now, not during the first turn.
    else await stt.prepare();
  }
  const storeUrl = sessionStoreUrl(flags, env);
  const motion = await resolveMotion(env, logger);
  out(`  AVATAR ${motion.description}`);
  const store = storeUrl === undefined ? undefined : new RedisSessionStore({ connection: storeUrl, logger });
  out(store === undefined ? '  STORE in memory (resumes on this process only)' : `  STORE ${printableUrl(storeUrl ?? '')} (shared; node ${store.nodeId})`);
  out(authSecret === undefined ? `  AUTH off: any client may connect (set ${AUTH_SECRET_ENV} to require session tokens)` : `  AUTH session tokens signed with ${AUTH_SECRET_ENV} (voxstate token create)`);
  const server = new VoiceServer({
    providers,
    ...(playbook === undefined ? {} : { playbook }),
    ...(motion.options === undefined ? {} : { motion: motion.options }),
    systemPrompt: config.systemPrompt ?? DEFAULT_PROMPT,
    logger,
    port: config.port ?? 8787,
    host: config.host ?? '127.0.0.1',
    ...(config.path === undefined ? {} : { path: config.path }),
    ...(config.vad === undefined ? {} : { vad: config.vad }),
    ...(config.turn === undefined ? {} : { turn: config.turn }),
    ...(config.session === undefined && store === undefined ? {} : { session: { ...config.session, ...(store === undefined ? {} : { store }) } }),
    ...(config.iceServers === undefined ? {} : { iceServers: config.iceServers }),
    ...(config.maxMessageBytes === undefined ? {} : { maxMessageBytes: config.maxMessageBytes }),
    ...(config.maxMessagesPerSecond === undefined ? {} : { maxMessagesPerSecond: config.maxMessagesPerSecond }),
    ...(config.metrics === undefined ? {} : { metrics: config.metrics }),
    ...(config.allowedOrigins === undefined ? {} : { allowedOrigins: config.allowedOrigins }),
    ...(config.trustProxy === undefined ? {} : { trustProxy: config.trustProxy }),
    ...(config.audioInput === undefined ? {} : { audioInput: config.audioInput }),
    ...(config.connectionIdleTimeoutMs === undefined ? {} : { connectionIdleTimeoutMs: config.connectionIdleTimeoutMs }),
    ...(config.webrtcWorkers === undefined ? {} : { webrtc: { workers: config.webrtcWorkers } }),
    ...(authSecret === undefined ? {} : { auth: tokenAuth(authSecret, { onRefused: (reason) => logger.info({ reason }, 'session token refused') }) }),
    secrets: environmentSecrets(env),
  });
  let address;
  try {
    address = await server.start();
  } catch (error) {
    await store?.close();
    await motion.local?.stop();
    throw error;
  }
  const http = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  out(`voxstate listening: ${address.url}  (health: ${http}/health${config.metrics === false ? '' : `, metrics: ${http}/metrics`})`);
  out(`talk to it: open ${http}/ in a browser (microphone or typed text)`);
  return {
    server,
    url: address.url,
    stop: async () => {
      await server.stop();
      await motion.local?.stop();
    },
  };
}
