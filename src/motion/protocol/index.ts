export { decodeMessage, encodeMessage, peekEnvelope, MESSAGE_TYPE, type EnvelopePeek } from './codec.js';
export * from './types.js';
