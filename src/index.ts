// The public API of voxstate. Re-exports only.
export * from './errors.js';
export type { Clock } from './clock.js';
export { realClock, sleep } from './clock.js';
export { createLogger, silentLogger, parseLogLevel, SECRET_KEYS, SecretScrubber, scrubbingLogger, type Logger, type LogLevel } from './observability/logger.js';
export { createMetrics, Metrics, type MetricsOptions } from './observability/metrics.js';
export { tracingRegistered, TRACER_NAME } from './observability/tracing.js';
export type * from './providers/types.js';
export { createSession, createSessionLogic, newResumeToken, secretsEqual, type SessionDependencies, type SessionSpec } from './session/session.js';
export { resolveSessionSettings, type SessionOptions } from './session/config.js';
export * as history from '../machines/history.js';
export { type AudioSink, createPlayoutLogic, estimateWordTimings } from './session/playout.js';
export { sessionMachine, stateName, DEFAULT_SESSION_SETTINGS, type SessionEvent, type SessionEmitted, type SessionInput, type SessionSettings } from '../machines/session.js';
export { replyMachine, playedText, DEFAULT_REPLY_SETTINGS, type ReplySettings } from '../machines/reply.js';
export { applyGuard, type Guard, type GuardInput, type GuardVerdict } from './session/actors.js';
export {
  MemorySessionStore,
  DEFAULT_TOMBSTONE_MS,
  type MemorySessionStoreOptions,
  type SessionRecord,
  type SessionRecordData,
  type SessionStore,
  type StoredSession,
  type SessionWrite,
  type SessionClaim,
  type SessionEnd,
  type SessionEndReason,
} from './session/store.js';
export { RedisSessionStore, type RedisSessionStoreOptions } from './session/redis-store.js';
export { DEFAULT_STORE_RETRY, type StoreRetry } from './session/store-writer.js';
export { AudioRecorder } from './audio/recorder.js';
export * from './turn/index.js';
export * from './tools/index.js';
export * from './playbook/index.js';
export * from './inspect/index.js';
export { createToolsActor, type ToolsActorOptions } from './session/actors.js';

// The server (library mode).
export * from './server/index.js';

// Providers: contracts above; implementations, detection and resilience here.
export * from './providers/index.js';

// Audio and VAD building blocks.
export { Resampler, resampleAll, readWav, writeWav, OpusEncoder, OpusDecoder, PlayoutClock, InboundPipeline, int16ToFloat32, float32ToInt16 } from './audio/index.js';
export { SharedVad, getSharedVad, VadStream, createVadActor, DEFAULT_VAD_CONFIG, resolveVadConfig, type VadConfig, type VadEvent } from './vad/index.js';

// Transports.
export { WebSocketAudioTransport, WebRtcTransport, WebRtcWorkerPool, type AudioTransport, type WebRtcServerOptions, type WebRtcWorkerPoolOptions } from './transport/index.js';

// Motion Server (Spatius-compatible) client, link, local server and client feed.
export { MotionClient, MotionError, LocalMotionServer, createMotionLinkActor, runMotionServer, type MotionLinkOptions } from './motion/index.js';
export { avatarAudio, avatarFrames, avatarInterrupt, feedFromMotion, toDemoShape, type AvatarFeedMessage } from './motion/feed.js';
export { motionLinkMachine } from '../machines/motion-link.js';

// The wire protocol (also available as voxstate/protocol).
export { PROTOCOL_VERSION, parseClientMessage, parseServerMessage, serializeClientMessage, serializeServerMessage, ERROR_CODES, CLOSE_CODES } from './protocol/index.js';
