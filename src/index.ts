// The public API of voxstate. Re-exports only.
export * from './errors.js';
export type { Clock } from './clock.js';
export { realClock, sleep } from './clock.js';
export { createLogger, silentLogger, type Logger } from './observability/logger.js';
export type * from './providers/types.js';
export { createSession, createSessionLogic, newResumeToken, secretsEqual, type SessionDependencies, type SessionSpec } from './session/session.js';
export { resolveSessionSettings, type SessionOptions } from './session/config.js';
export * as history from './session/history.js';
export { type AudioSink, createPlayoutLogic, estimateWordTimings } from './session/playout.js';
export { sessionMachine, stateName, DEFAULT_SESSION_SETTINGS, type SessionEvent, type SessionEmitted, type SessionInput, type SessionSettings } from '../machines/session.js';
export { replyMachine, playedText, DEFAULT_REPLY_SETTINGS, type ReplySettings } from '../machines/reply.js';
