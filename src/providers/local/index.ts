export { FLITE_VOICES, FliteTts, fliteModule, plainText, splitSentences, type FliteTtsOptions, type FliteVoice } from './flite-tts.js';
export { PocketsphinxStt, probeFfmpeg, type PocketsphinxSttOptions, type ProbeResult } from './pocketsphinx-stt.js';
export {
  ScriptedAgent,
  parseBooking,
  type ScriptedAction,
  type ScriptedAgentOptions,
  type ScriptedContext,
  type ScriptedRule,
} from './scripted-agent.js';
export { decodeWav, encodeWav, type DecodedWav } from './pcm.js';
