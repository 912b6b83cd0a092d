/** Which provider contract a wrapper is dealing with. */
import type { LlmProvider, SttProvider, TtsProvider } from '../types.js';
import type { ProviderKind } from '../local/streams.js';

export type AnyProvider = SttProvider | LlmProvider | TtsProvider;

/** Which contract a provider implements, from its shape. */
export function providerKind(provider: AnyProvider): ProviderKind {
  if ('synthesize' in provider) return 'tts';
  if ('transcribe' in provider) return 'stt';
  return 'llm';
}
