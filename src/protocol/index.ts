export {
  PROTOCOL_VERSION,
  SAMPLE_RATES,
  CLIENT_MESSAGE_TYPES,
  SERVER_MESSAGE_TYPES,
  SESSION_STATES,
  VOICE_STATES,
  clientMessageSchema,
  serverMessageSchema,
  errorCodeSchema,
  audioTransportKindSchema,
  helloAudioSchema,
  helloOptionsSchema,
  negotiatedAudioSchema,
  iceServerSchema,
} from './messages.js';
export type {
  SampleRate,
  AudioTransportKind,
  HelloAudio,
  HelloOptions,
  NegotiatedAudio,
  IceServer,
  ClientMessage,
  ServerMessage,
  ClientMessageType,
  ServerMessageType,
  ClientMessageOf,
  ServerMessageOf,
  SessionHello,
  SessionResume,
  SessionReady,
  SessionResumed,
  SessionStateMessage,
  SessionStateName,
  VoiceState,
  IceCandidateMessage,
  ErrorMessage,
} from './messages.js';
export {
  DEFAULT_MAX_CLIENT_MESSAGE_BYTES,
  DEFAULT_MAX_SERVER_MESSAGE_BYTES,
  parseClientMessage,
  parseServerMessage,
  serializeClientMessage,
  serializeServerMessage,
  utf8ByteLength,
} from './codec.js';
export type { ParseResult } from './codec.js';
export {
  SessionEventEncoder,
  encodeSessionEvent,
  encodeSessionState,
  initialEncoderState,
  wireErrorCode,
} from './session-events.js';
export type { EncodedStep, SessionEncoderState } from './session-events.js';
export { CLOSE_CODES, CLOSE_NORMAL, ERROR_CODES, closeCodeFor, isRetryableClose } from './error-codes.js';
export { RtpSequencer, isNewerSequence, sequenceGap } from './rtp-sequencer.js';
export type { RtpStamp, RtpSequencerOptions } from './rtp-sequencer.js';
export type { ErrorCode } from '../errors.js';
