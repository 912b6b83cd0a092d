export { GrpcStatus, mapGoogleError, type GoogleClientOptions } from './client.js';
export { GoogleStt, type GoogleSttOptions } from './stt.js';
export { GoogleTts, type GoogleTtsOptions } from './tts.js';
