import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';
import { ConfigError, ProviderError } from '../../errors.js';
import { httpStatusError, redactSecrets, toProviderError } from '../resilience.js';
import { abortedError, type ProviderKind } from '../local/streams.js';

/** How to reach OpenAI or any OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp). */
export interface OpenAiClientOptions {
  /** Defaults to OPENAI_API_KEY; servers reached through `baseURL` may need none. */
  readonly apiKey?: string;
  /** e.g. http://127.0.0.1:11434/v1 for Ollama. Default: api.openai.com. */
  readonly baseURL?: string;
  readonly organization?: string;
  readonly project?: string;
  readonly defaultHeaders?: Readonly<Record<string, string>>;
  /** Per-request timeout inside the SDK. Default 60000 ms (the resilience layer has its own). */
  readonly requestTimeoutMs?: number;
  /** Retries inside the SDK. Default 0: retries belong to `withResilience`, not to both. */
  readonly maxRetries?: number;
  /** An already configured client; the options above are then ignored. */
  readonly client?: OpenAI;
}

/** A placeholder key for OpenAI-compatible servers that want none (the SDK insists on one). */
const NO_KEY = 'no-key-required';

export function createOpenAiClient(options: OpenAiClientOptions = {}, env: NodeJS.ProcessEnv = process.env): OpenAI {
  if (options.client) return options.client;
  if (options.baseURL !== undefined) {
    try {
      new URL(options.baseURL);
    } catch {
      throw new ConfigError('baseURL', 'is not a valid URL');
    }
  }
  const apiKey = options.apiKey ?? env['OPENAI_API_KEY'] ?? (options.baseURL === undefined ? undefined : NO_KEY);
  if (apiKey === undefined || apiKey === '')
    throw new ConfigError('apiKey', 'no OpenAI API key: pass apiKey, set OPENAI_API_KEY, or point baseURL at a compatible server');
  return new OpenAI({
    apiKey,
    ...(options.baseURL === undefined ? {} : { baseURL: options.baseURL }),
    ...(options.organization === undefined ? {} : { organization: options.organization }),
    ...(options.project === undefined ? {} : { project: options.project }),
    ...(options.defaultHeaders === undefined ? {} : { defaultHeaders: { ...options.defaultHeaders } }),
    timeout: options.requestTimeoutMs ?? 60_000,
    maxRetries: options.maxRetries ?? 0,
  });
}

/** True when the client talks to api.openai.com rather than a compatible server. */
export function isOfficialOpenAi(client: OpenAI): boolean {
  try {
    return new URL(client.baseURL).hostname === 'api.openai.com';
  } catch {
    return false;
  }
}

/** Maps an error thrown by the openai SDK (or while reading its streams) to a ProviderError. */
export function mapOpenAiError(error: unknown, kind: ProviderKind, signal?: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal?.aborted || error instanceof APIUserAbortError) return abortedError(kind, error);
  if (error instanceof APIConnectionTimeoutError)
    return new ProviderError('provider_timeout', kind, 'the OpenAI request timed out', { cause: error, retryable: true });
  if (error instanceof APIConnectionError)
    return new ProviderError('provider_unavailable', kind, `cannot reach the OpenAI endpoint: ${redactSecrets(error.message)}`, {
      cause: error,
      retryable: true,
    });
  if (error instanceof APIError) {
    const code = typeof error.code === 'string' ? error.code : undefined;
    const detail = redactSecrets(error.message);
    if (error.status === undefined)
      // An `error` event inside an otherwise successful stream.
      return new ProviderError('provider_failed', kind, `OpenAI stream reported an error: ${detail}`, { cause: error });
    if (error.status === 429 && code === 'insufficient_quota')
      return new ProviderError('provider_rate_limited', kind, `OpenAI quota exhausted: ${detail}`, { cause: error, status: 429 });
    return httpStatusError(error.status, kind, `OpenAI ${detail}`, error);
  }
  if (error instanceof SyntaxError || (error instanceof OpenAIError && /parse|json/i.test(error.message)))
    return new ProviderError('provider_bad_response', kind, `malformed response from the OpenAI endpoint: ${redactSecrets(error.message)}`, {
      cause: error,
    });
  return toProviderError(error, kind);
}
