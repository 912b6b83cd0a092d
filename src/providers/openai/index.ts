export { createOpenAiClient, mapOpenAiError, type OpenAiClientOptions } from './client.js';
export { OpenAiLlm, toOpenAiMessage, toOpenAiTool, type OpenAiLlmOptions } from './llm.js';
export { OpenAiRealtimeStt, type OpenAiRealtimeSttOptions } from './realtime-stt.js';
export { OpenAiStt, type OpenAiSttOptions } from './stt.js';
export { OpenAiTts, type OpenAiTtsOptions } from './tts.js';
