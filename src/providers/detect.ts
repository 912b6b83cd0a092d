/**
 * Picks the STT, LLM and TTS providers from environment variables. Explicit configuration always
 * wins; `VOXSTATE_STT` / `VOXSTATE_LLM` / `VOXSTATE_TTS` force a choice; otherwise the first
 * configured service in this order is used:
 *
 *   LLM: OPENAI_BASE_URL → OLLAMA_BASE_URL / OLLAMA_MODEL → OPENAI_API_KEY → scripted agent
 *   STT: GOOGLE_APPLICATION_CREDENTIALS (streams interim results) → OPENAI_API_KEY → pocketsphinx
 *   TTS: OPENAI_API_KEY → GOOGLE_APPLICATION_CREDENTIALS → Flite
 *
 * Every choice is logged once with its reason (variable names, never values of secrets). Missing or
 * unusable credentials throw a ConfigError naming the variable now, not at the first call.
 * Cloud providers come wrapped in `withResilience` (timeouts, retries).
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { silentLogger } from '../observability/logger.js';
import type { LlmProvider, Providers, SttProvider, TtsProvider } from './types.js';
import { GoogleStt, GoogleTts } from './google/index.js';
import { FliteTts, PocketsphinxStt, ScriptedAgent } from './local/index.js';
import { OpenAiLlm, OpenAiStt, OpenAiTts } from './openai/index.js';
import { withResilience } from './resilience.js';

export type ProviderKindName = 'stt' | 'llm' | 'tts';

export interface ProviderChoice {
  readonly kind: ProviderKindName;
  /** The chosen provider's `name`. */
  readonly name: string;
  /** Why it was chosen, in words (names variables, never their secret values). */
  readonly reason: string;
}

export interface DetectedProviders {
  readonly providers: Providers;
  readonly choices: readonly ProviderChoice[];
}

const FORCE_VALUES = ['openai', 'google', 'local', 'scripted'] as const;
type Forced = (typeof FORCE_VALUES)[number];

const FORCE_VARIABLE: Record<ProviderKindName, string> = { stt: 'VOXSTATE_STT', llm: 'VOXSTATE_LLM', tts: 'VOXSTATE_TTS' };

export function detectProviders(
  env: NodeJS.ProcessEnv = process.env,
  explicit: Partial<Providers> = {},
  logger: Logger = silentLogger(),
): DetectedProviders {
  const settings = readSettings(env);
  const choices: ProviderChoice[] = [];
  const choose = <P extends { name: string }>(kind: ProviderKindName, provider: P, reason: string): P => {
    choices.push({ kind, name: provider.name, reason });
    logger.info({ kind, provider: provider.name, reason }, 'provider selected');
    return provider;
  };

  const stt: SttProvider = explicit.stt
    ? choose('stt', explicit.stt, 'given explicitly in the configuration')
    : chooseStt(settings, choose);
  const llm: LlmProvider = explicit.llm
    ? choose('llm', explicit.llm, 'given explicitly in the configuration')
    : chooseLlm(settings, choose);
  const tts: TtsProvider = explicit.tts
    ? choose('tts', explicit.tts, 'given explicitly in the configuration')
    : chooseTts(settings, choose);
  return { providers: { stt, llm, tts }, choices };
}

// ---------------------------------------------------------------------------------------------

interface Settings {
  readonly forced: Partial<Record<ProviderKindName, Forced>>;
  readonly openAiKey: string | undefined;
  readonly openAiBaseUrl: string | undefined;
  readonly openAiModel: string | undefined;
  readonly ollama: { readonly baseURL: string; readonly model: string } | undefined;
  readonly googleCredentials: string | undefined;
}

type Choose = <P extends { name: string }>(kind: ProviderKindName, provider: P, reason: string) => P;

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

function readSettings(env: NodeJS.ProcessEnv): Settings {
  const forced: Partial<Record<ProviderKindName, Forced>> = {};
  for (const kind of ['stt', 'llm', 'tts'] as const) {
    const variable = FORCE_VARIABLE[kind];
    const value = nonEmpty(env[variable])?.toLowerCase();
    if (value === undefined) continue;
    if (!(FORCE_VALUES as readonly string[]).includes(value))
      throw new ConfigError(variable, `must be one of ${FORCE_VALUES.join(', ')} (got "${value}")`);
    if (value === 'scripted' && kind !== 'llm')
      throw new ConfigError(variable, '"scripted" is a stand-in LLM only; use openai, google or local');
    forced[kind] = value as Forced;
  }
  const openAiBaseUrl = nonEmpty(env['OPENAI_BASE_URL']);
  if (openAiBaseUrl !== undefined) assertUrl('OPENAI_BASE_URL', openAiBaseUrl);
  const ollamaBase = nonEmpty(env['OLLAMA_BASE_URL']);
  const ollamaModel = nonEmpty(env['OLLAMA_MODEL']);
  if (ollamaBase !== undefined) assertUrl('OLLAMA_BASE_URL', ollamaBase);
  const ollama =
    ollamaBase !== undefined || ollamaModel !== undefined
      ? { baseURL: ollamaApiUrl(ollamaBase ?? 'http://127.0.0.1:11434'), model: ollamaModel ?? 'llama3.2' }
      : undefined;
  return {
    forced,
    openAiKey: nonEmpty(env['OPENAI_API_KEY']),
    openAiBaseUrl,
    openAiModel: nonEmpty(env['OPENAI_MODEL']),
    ollama,
    googleCredentials: nonEmpty(env['GOOGLE_APPLICATION_CREDENTIALS']),
  };
}

function assertUrl(variable: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, 'is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(variable, 'must be an http(s) URL');
}

/** Ollama's OpenAI-compatible API lives under /v1. */
function ollamaApiUrl(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/v1') ? trimmed : `${trimmed}/v1`;
}

/** Origin of a URL for a log line: no credentials, path or query. */
function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}

/** Checks the key file now so a typo fails at start-up, naming the variable. */
function googleKeyFile(settings: Settings, why: string): string {
  const path = settings.googleCredentials;
  if (path === undefined)
    throw new ConfigError('GOOGLE_APPLICATION_CREDENTIALS', `${why} needs a service-account key: set GOOGLE_APPLICATION_CREDENTIALS to its JSON file`);
  if (!existsSync(path)) throw new ConfigError('GOOGLE_APPLICATION_CREDENTIALS', `file not found: ${path}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ConfigError('GOOGLE_APPLICATION_CREDENTIALS', `${path} is not a JSON credentials file`);
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { type?: unknown }).type !== 'string')
    throw new ConfigError('GOOGLE_APPLICATION_CREDENTIALS', `${path} has no "type" field; is it a Google credentials file?`);
  return path;
}

function requireOpenAi(settings: Settings, kind: ProviderKindName): void {
  if (settings.openAiKey === undefined && settings.openAiBaseUrl === undefined && !(kind === 'llm' && settings.ollama))
    throw new ConfigError(
      'OPENAI_API_KEY',
      `${FORCE_VARIABLE[kind]}=openai needs OPENAI_API_KEY${kind === 'llm' ? ', OPENAI_BASE_URL or OLLAMA_BASE_URL' : ' or OPENAI_BASE_URL'}`,
    );
}

/** Connection options for OpenAI itself or the compatible server in OPENAI_BASE_URL. */
function openAiConnection(settings: Settings): { apiKey?: string; baseURL?: string } {
  return {
    ...(settings.openAiKey === undefined ? {} : { apiKey: settings.openAiKey }),
    ...(settings.openAiBaseUrl === undefined ? {} : { baseURL: settings.openAiBaseUrl }),
  };
}

function chooseLlm(settings: Settings, choose: Choose): LlmProvider {
  const forced = settings.forced.llm;
  const model = settings.openAiModel === undefined ? {} : { model: settings.openAiModel };
  if (forced === 'scripted' || forced === 'local')
    return choose('llm', new ScriptedAgent(), `forced by VOXSTATE_LLM=${forced}: replies come from the scripted agent`);
  if (forced === 'google') throw new ConfigError('VOXSTATE_LLM', 'there is no Google LLM provider; use openai or scripted');
  if (forced === 'openai') requireOpenAi(settings, 'llm');
  if (settings.openAiBaseUrl !== undefined)
    return choose(
      'llm',
      withResilience(new OpenAiLlm({ ...openAiConnection(settings), ...model })),
      `${forced ? 'forced by VOXSTATE_LLM=openai; ' : ''}OPENAI_BASE_URL is set (OpenAI-compatible server at ${origin(settings.openAiBaseUrl)})`,
    );
  if (settings.ollama)
    return choose(
      'llm',
      // Never send an OpenAI key to a local server.
      withResilience(new OpenAiLlm({ baseURL: settings.ollama.baseURL, apiKey: 'ollama', model: settings.ollama.model, name: `ollama:${settings.ollama.model}` })),
      `${forced ? 'forced by VOXSTATE_LLM=openai; ' : ''}OLLAMA_BASE_URL/OLLAMA_MODEL is set (Ollama at ${origin(settings.ollama.baseURL)}, model ${settings.ollama.model})`,
    );
  if (settings.openAiKey !== undefined)
    return choose('llm', withResilience(new OpenAiLlm({ apiKey: settings.openAiKey, ...model })), `${forced ? 'forced by VOXSTATE_LLM=openai; ' : ''}OPENAI_API_KEY is set`);
  return choose(
    'llm',
    new ScriptedAgent(),
    'no LLM configured (set OPENAI_API_KEY, OPENAI_BASE_URL or OLLAMA_BASE_URL); replies come from the scripted agent',
  );
}

function chooseStt(settings: Settings, choose: Choose): SttProvider {
  const forced = settings.forced.stt;
  if (forced === 'google' || (forced === undefined && settings.googleCredentials !== undefined)) {
    const keyFilename = googleKeyFile(settings, forced ? 'VOXSTATE_STT=google' : 'Google STT');
    return choose('stt', withResilience(new GoogleStt({ keyFilename })), forced ? 'forced by VOXSTATE_STT=google' : 'GOOGLE_APPLICATION_CREDENTIALS is set (streaming recognition with interim results)');
  }
  if (forced === 'openai') {
    requireOpenAi(settings, 'stt');
    return choose('stt', withResilience(new OpenAiStt(openAiConnection(settings))), 'forced by VOXSTATE_STT=openai');
  }
  // A bare OPENAI_BASE_URL is usually a chat-only local server, so it is not picked for STT by itself.
  if (forced === undefined && settings.openAiKey !== undefined)
    return choose('stt', withResilience(new OpenAiStt(openAiConnection(settings))), 'OPENAI_API_KEY is set (no Google credentials)');
  return choose(
    'stt',
    new PocketsphinxStt(),
    forced === 'local'
      ? 'forced by VOXSTATE_STT=local: offline pocketsphinx through ffmpeg'
      : 'no cloud STT configured (set GOOGLE_APPLICATION_CREDENTIALS or OPENAI_API_KEY); offline pocketsphinx through ffmpeg (needs ffmpeg with the asr filter)',
  );
}

function chooseTts(settings: Settings, choose: Choose): TtsProvider {
  const forced = settings.forced.tts;
  if (forced === 'openai' || (forced === undefined && settings.openAiKey !== undefined)) {
    if (forced) requireOpenAi(settings, 'tts');
    return choose('tts', withResilience(new OpenAiTts(openAiConnection(settings))), forced ? 'forced by VOXSTATE_TTS=openai' : 'OPENAI_API_KEY is set');
  }
  if (forced === 'google' || (forced === undefined && settings.googleCredentials !== undefined)) {
    const keyFilename = googleKeyFile(settings, forced ? 'VOXSTATE_TTS=google' : 'Google TTS');
    return choose('tts', withResilience(new GoogleTts({ keyFilename })), forced ? 'forced by VOXSTATE_TTS=google' : 'GOOGLE_APPLICATION_CREDENTIALS is set (no OPENAI_API_KEY)');
  }
  return choose(
    'tts',
    new FliteTts(),
    forced === 'local' ? 'forced by VOXSTATE_TTS=local: offline Flite voice' : 'no cloud TTS configured (set OPENAI_API_KEY or GOOGLE_APPLICATION_CREDENTIALS); offline Flite voice',
  );
}
