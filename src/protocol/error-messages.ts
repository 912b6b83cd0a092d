/**
 * What an `error` message tells the client. A provider's own error text is for the operator: it
 * can name internal hosts, accounts (service-account e-mails), request ids, sometimes the key
 * itself echoed back. The client gets the stable code and a generic sentence naming only the kind
 * of provider; the detail goes to the server log (scrubbed) and to the application's `error`
 * event and `onError` hook.
 *
 * Messages voxstate writes about the client's own input or the server's limits (protocol_*,
 * audio_*, session_* except session_store_unavailable, connection_idle, auth_failed, tool_unknown,
 * tool_invalid_arguments) reach it unchanged: they contain nothing but what the client sent and
 * the server's limits.
 */
import type { ErrorCode } from '../errors.js';

/** The kinds of provider an error can name: `avatar` is the Motion Server (its messages start `avatar: `). */
export type ProviderKindName = 'stt' | 'llm' | 'tts' | 'avatar' | 'other';

const KIND_NAMES: Readonly<Record<ProviderKindName, string>> = {
  stt: 'the speech-to-text provider',
  llm: 'the language model provider',
  tts: 'the text-to-speech provider',
  avatar: 'the Motion Server',
  other: 'a provider',
};

/** The generic sentence of each provider code, after the provider's name. */
const PROVIDER_SENTENCES: Readonly<Partial<Record<ErrorCode, string>>> = {
  provider_failed: 'failed',
  provider_timeout: 'did not answer in time',
  provider_aborted: 'call was cancelled',
  provider_rate_limited: 'is rate-limiting this server; try again shortly',
  provider_auth: "refused this server's credentials",
  provider_bad_response: 'sent a response that could not be used',
  provider_unavailable: 'is unavailable',
};

/** The generic messages of the other codes whose detail is the server's business. */
const SERVER_MESSAGES: Readonly<Partial<Record<ErrorCode, string>>> = {
  config_invalid: "the server's configuration is invalid",
  vad_inference_failed: 'voice activity detection failed',
  vad_model_missing: 'voice activity detection is unavailable',
  transport_failed: 'the audio transport failed on the server; start a new session',
  // A store's error names its host (and, in a URL, maybe its password).
  session_store_unavailable: 'the session store is unavailable; try again shortly',
  tool_failed: 'a tool failed',
  internal: 'internal server error',
};

/** Whether the client sees a generic message for `code` (the detail stays on the server). */
export function hidesDetail(code: string): boolean {
  return code in PROVIDER_SENTENCES || code in SERVER_MESSAGES;
}

/**
 * The `error.message` the client receives for an error of `code` whose detailed text is
 * `message`, from a provider of `provider` kind when known.
 */
export function clientErrorMessage(code: ErrorCode, message: string, provider?: string): string {
  const sentence = PROVIDER_SENTENCES[code];
  if (sentence !== undefined) {
    const kind = provider !== undefined && provider in KIND_NAMES ? (provider as ProviderKindName) : 'other';
    return `${KIND_NAMES[kind]} ${sentence}`;
  }
  return SERVER_MESSAGES[code] ?? message;
}

/** A failed tool call's `tool.end.error` as the client sees it: see docs/tools.md#errors. */
export const TOOL_FAILED_MESSAGE = 'the tool failed';

/**
 * The client's copy of a failed tool call's result (`ToolErrorContent` JSON, src/tools/run.ts):
 * a tool's thrown message is the application's code talking to the model, and may carry what a
 * library put in it (hosts, queries, keys), so it becomes TOOL_FAILED_MESSAGE. The messages
 * voxstate writes (unknown tool, invalid arguments, timeout, cancelled) stay. Text that is not
 * such JSON is returned as it is.
 */
export function clientToolError(content: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return content;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return content;
  const { code, reason } = parsed as { code?: unknown; reason?: unknown };
  if (code !== 'tool_failed' || reason !== undefined) return content;
  return JSON.stringify({ ...parsed, error: TOOL_FAILED_MESSAGE });
}
