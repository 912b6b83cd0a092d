import type { VoxError } from '../errors.js';

export type AudioTransportKind = 'websocket' | 'webrtc';

export interface AudioFormat {
  readonly sampleRate: number;
  readonly channels: 1;
}

/** Why a transport ended: `close()` was called, the peer went away, or the link failed. */
export interface TransportClosedInfo {
  readonly reason: 'closed' | 'remote' | 'failed';
  readonly error?: VoxError;
}

/** How much of a reply's audio the client has actually played (websocket audio only). */
export interface PlaybackProgress {
  readonly replyId: string;
  readonly playedMs: number;
}

export type AudioListener = (pcm: Int16Array, sampleRate: number) => void;
export type Unsubscribe = () => void;

/**
 * A dumb audio pipe between one client and one session: PCM16 mono in both directions and
 * nothing else. Transports know nothing about sessions, turns or the JSON protocol.
 *
 * Listeners are isolated: one that throws is logged and skipped, never breaks the pipe.
 * `sendAudio` never throws; problems are reported through `onError`.
 */
export interface AudioTransport {
  readonly kind: AudioTransportKind;
  /** Format of the audio delivered to `onAudio` listeners. */
  readonly inputFormat: AudioFormat;
  /** Rate of the frames `sendAudio` expects, in Hz. */
  readonly outputSampleRate: number;
  /** Samples in one outbound 20 ms frame at `outputSampleRate`. */
  readonly outputFrameSamples: number;
  readonly closed: boolean;

  /** Inbound audio: mono PCM16 at `sampleRate`. Returns an unsubscribe function. */
  onAudio(listener: AudioListener): Unsubscribe;
  /** Sends one outbound frame of mono PCM16 at `outputSampleRate` (normally 20 ms). */
  sendAudio(frame: Int16Array): void;
  /**
   * Drops every outbound frame not yet handed to the network (a reply was cancelled): after it
   * returns, no frame passed to sendAudio before the call is ever sent. Returns how many frames were dropped.
   * Idempotent and never throws; returns 0 once the transport is closed.
   */
  clearOutput(): number;
  /** Non-fatal problems: malformed inbound audio, encoder failures, dropped frames. */
  onError(listener: (error: VoxError) => void): Unsubscribe;
  /** Called once when the transport ends, whatever the reason. */
  onClosed(listener: (info: TransportClosedInfo) => void): Unsubscribe;
  /** Playback position reports from the client, where the transport carries them. */
  onPlaybackProgress?(listener: (progress: PlaybackProgress) => void): Unsubscribe;
  /** Releases everything. Idempotent; the returned promise settles when resources are freed. */
  close(): Promise<void>;
}
