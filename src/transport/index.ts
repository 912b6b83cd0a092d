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
export { InboundRateMeter, type InboundRateOptions, type InboundVerdict } from './inbound-rate.js';
export { WebRtcTransport, OPUS_SAMPLE_RATE } from './webrtc.js';
export type {
  HandleOfferOptions,
  IceCandidateInit,
  IceServerConfig,
  WebRtcConnectionState,
  WebRtcPeerTransport,
  WebRtcStats,
  WebRtcTransportOptions,
} from './webrtc.js';
export { WebRtcWorkerPool, webRtcTransportFactory } from './webrtc-pool.js';
export type { WebRtcServerOptions, WebRtcTransportFactory, WebRtcWorkerInfo, WebRtcWorkerPoolOptions } from './webrtc-pool.js';
export { WebRtcWorkerTransport } from './webrtc-worker-transport.js';
export { assertAudioOffer } from './sdp-check.js';
