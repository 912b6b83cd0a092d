import type { ErrorCode } from '../errors.js';
import type {
  HelloOptions,
  SampleRate,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
  SessionReady,
  SessionResumed,
  VoiceState,
} from '../protocol/messages.js';
import type { WebSocketConstructor } from './socket.js';

export interface ReconnectOptions {
  /** Delay before the first attempt. Default 500 ms. */
  readonly initialDelayMs?: number;
  /** Cap on the doubling delay. Default 10 000 ms. */
  readonly maxDelayMs?: number;
  /** Attempts before giving up and emitting `closed`. Default 10. */
  readonly maxAttempts?: number;
  /** Each delay is shortened by up to this fraction at random, so clients do not stampede. Default 0.3. */
  readonly jitter?: number;
}

export interface VoxClientOptions {
  /** `ws://` or `wss://` URL of the voxstate server's WebSocket endpoint. */
  readonly url: string;
  /** Sent in `session.hello`; never logged or emitted. */
  readonly token?: string;
  readonly audio: { readonly transport: 'webrtc' | 'websocket'; readonly sampleRate: SampleRate };
  readonly options?: HelloOptions;
  /** Resume after a dropped connection; `false` disables. */
  readonly reconnect?: ReconnectOptions | false;
  /** Interval between pings. Default 15 000 ms; 0 disables the heartbeat. */
  readonly heartbeatMs?: number;
  /** A ping unanswered for this long counts as a dead connection. Default: `heartbeatMs`. */
  readonly heartbeatTimeoutMs?: number;
  /** Time allowed from opening the socket to `session.ready` / `session.resumed`. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Largest server message accepted. Default 4 MiB. */
  readonly maxMessageBytes?: number;
  /** WebSocket implementation. Default: the global one, else the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /** Randomness for backoff jitter (tests pass a fixed function). Default `Math.random`. */
  readonly random?: () => number;
  /** Receives errors thrown by event listeners. Default: ignored. */
  readonly onListenerError?: (error: unknown, event: PropertyKey) => void;
}

export type VoxClientStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** An error reported by the server (`error` message) or detected by the client. */
export interface VoxClientError {
  readonly code: ErrorCode;
  readonly message: string;
  /** True when the session cannot continue. */
  readonly fatal: boolean;
  readonly source: 'server' | 'client';
}

export interface AgentAudio {
  /** Mono PCM16 agent speech (websocket audio transport). */
  readonly pcm: Int16Array;
  readonly sampleRate: number;
  /** The reply it belongs to (from the enclosing `reply.audio_start`). */
  readonly replyId: string | undefined;
}

type RawServerEvents = { [K in Exclude<ServerMessageType, 'error'>]: ServerMessageOf<K> };

export interface VoxClientEvents extends RawServerEvents {
  /** `session.ready` on the first connection. */
  ready: SessionReady;
  /** `session.resumed` after a reconnection. */
  resumed: SessionResumed;
  /**
   * Every `session.state` (the turn or the user's voice changed): `state` is the turn
   * (`listening`, `thinking`, `speaking`, `interrupted.confirming`, …), `previous` the turn before
   * (equal to `state` when only the voice changed), `voice` silent | speaking | paused.
   */
  state: { readonly state: string; readonly previous: string | undefined; readonly voice: VoiceState };
  /** The user's voice changed (from `session.state` or `session.resumed`). */
  voice: { readonly voice: VoiceState; readonly previous: VoiceState | undefined };
  /** `transcript.partial` and `transcript.final` together. */
  transcript: { readonly text: string; readonly final: boolean };
  audio: AgentAudio;
  error: VoxClientError;
  /** The socket dropped; a resume attempt follows after `delayMs`. */
  reconnecting: { readonly attempt: number; readonly delayMs: number; readonly code: number; readonly reason: string };
  /** The socket closed (whether or not a reconnection follows). */
  disconnected: { readonly code: number; readonly reason: string };
  /** The client is done: `close()` was called, the server ended the session, or resuming failed for good. */
  closed: { readonly code: number; readonly reason: string };
  /** Every valid server message, before the specific event. */
  message: ServerMessage;
}
