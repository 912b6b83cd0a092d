export { FLITE_VOICES, FliteTts, fliteModule, plainText, splitSentences, type FliteTtsOptions, type FliteVoice } from './flite-tts.js';
export {
  DEFAULT_CMNINIT,
  PocketsphinxStt,
  probeFfmpeg,
  type PocketsphinxSttOptions,
  type ProbeResult,
  type RecognizerModel,
} from './pocketsphinx-stt.js';
export { normalizeWords, writeLanguageModel, type LanguageModelFiles, type LanguageModelOptions } from './language-model.js';
export { OFFLINE_PHRASES } from './offline-phrases.js';
export {
  ScriptedAgent,
  parseBooking,
  type ScriptedAction,
  type ScriptedAgentOptions,
  type ScriptedContext,
  type ScriptedRule,
} from './scripted-agent.js';
export { decodeWav, encodeWav, type DecodedWav } from './pcm.js';
