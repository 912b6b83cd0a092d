/** Provider implementations, auto-detection and resilience wrappers. */
export { detectProviders, type DetectedProviders, type ProviderChoice, type ProviderKindName } from './detect.js';
export {
  backoffDelay,
  fallback,
  providerKind,
  sttStreamOf,
  toProviderError,
  withConcurrency,
  withResilience,
  type AnyProvider,
  type FallbackOptions,
  type ResilienceOptions,
  type RetryOptions,
  type TimeoutOptions,
} from './resilience.js';
export { limitProviders, type ProviderLimits } from './limits.js';
export {
  OpenAiLlm,
  OpenAiRealtimeStt,
  OpenAiStt,
  OpenAiTts,
  type OpenAiClientOptions,
  type OpenAiLlmOptions,
  type OpenAiRealtimeSttOptions,
  type OpenAiSttOptions,
  type OpenAiTtsOptions,
} from './openai/index.js';
export { GoogleStt, GoogleTts, type GoogleClientOptions, type GoogleSttOptions, type GoogleTtsOptions } from './google/index.js';
export {
  FLITE_VOICES,
  FliteTts,
  DEFAULT_CMNINIT,
  OFFLINE_PHRASES,
  PocketsphinxStt,
  ScriptedAgent,
  probeFfmpeg,
  writeLanguageModel,
  type LanguageModelFiles,
  type LanguageModelOptions,
  type RecognizerModel,
  type FliteTtsOptions,
  type FliteVoice,
  type PocketsphinxSttOptions,
  type ProbeResult,
  type ScriptedAction,
  type ScriptedAgentOptions,
  type ScriptedContext,
  type ScriptedRule,
} from './local/index.js';
export type * from './types.js';
