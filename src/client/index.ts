export { VoxClient } from './vox-client.js';
export type {
  AgentAudio,
  ReconnectOptions,
  VoxClientError,
  VoxClientEvents,
  VoxClientOptions,
  VoxClientStatus,
} from './vox-client.js';
export { connectWebRtc } from './webrtc.js';
export type { ConnectWebRtcOptions, OpusModule, WebRtcAudioLink, WeriftModule } from './webrtc.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { PROTOCOL_VERSION } from '../protocol/messages.js';
export type {
  ClientMessage,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
  SessionReady,
  SessionResumed,
  HelloOptions,
  IceServer,
  NegotiatedAudio,
  SampleRate,
  VoiceState,
} from '../protocol/messages.js';
