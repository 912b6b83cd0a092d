export type {
  AudioTransport,
  AudioTransportKind,
  AudioFormat,
  AudioListener,
  PlaybackProgress,
  TransportClosedInfo,
  Unsubscribe,
} from './audio-transport.js';
export { WebSocketAudioTransport } from './websocket-audio.js';
export type { AudioSocket, BinaryData, WebSocketAudioStats, WebSocketAudioTransportOptions } from './websocket-audio.js';
export { WebRtcTransport, OPUS_SAMPLE_RATE } from './webrtc.js';
export type {
  HandleOfferOptions,
  IceCandidateInit,
  IceServerConfig,
  WebRtcConnectionState,
  WebRtcStats,
  WebRtcTransportOptions,
} from './webrtc.js';
export { assertAudioOffer } from './sdp-check.js';
