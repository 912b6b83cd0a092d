/**
 * Typed view of the Motion Server envelope (`Message` in motion.proto). Names are camelCase here;
 * the codec maps them to the protobuf fields. `type` mirrors `MessageType` in a dot-namespaced form.
 */

/** A FLAME vector: decoded as `number[]`, accepted as a `Float32Array` when encoding. */
export type FloatVector = readonly number[] | Float32Array;

/** One FLAME keyframe. Sizes: translation 3, rotation 3, neckPose 3, jawPose 3, eyePose 6, eyeLid 2, expression 100. */
export interface FlameKeyframe {
  readonly translation: FloatVector;
  readonly rotation: FloatVector;
  readonly neckPose: FloatVector;
  readonly jawPose: FloatVector;
  readonly eyePose: FloatVector;
  readonly eyeLid: FloatVector;
  readonly expression: FloatVector;
}

export const FLAME_SIZES = {
  translation: 3,
  rotation: 3,
  neckPose: 3,
  jawPose: 3,
  eyePose: 6,
  eyeLid: 2,
  expression: 100,
} as const;

export type AudioFormat = 'pcm_s16le' | 'ogg_opus';

/** Sample rates a Motion Server accepts in `ClientConfigureSession.sample_rate`. */
export const MOTION_SAMPLE_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000] as const;
export type MotionSampleRate = (typeof MOTION_SAMPLE_RATES)[number];

export interface LiveKitEgress {
  readonly type: 'livekit';
  readonly url: string;
  readonly apiKey: string;
  readonly apiSecret: string;
  readonly roomName: string;
  readonly publisherId?: string;
  readonly extraAttributes?: Readonly<Record<string, string>>;
  /** Seconds the avatar stays in an idle room. */
  readonly idleTimeout?: number;
  /** A pre-minted LiveKit token, instead of apiKey/apiSecret. */
  readonly apiToken?: string;
}

export interface AgoraEgress {
  readonly type: 'agora';
  readonly channelName: string;
  readonly token: string;
  readonly uid: number;
  readonly publisherId?: string;
}

export type EgressConfig = LiveKitEgress | AgoraEgress;

export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export interface ConfigureSessionMessage {
  readonly type: 'client.configureSession';
  readonly sampleRate: number;
  readonly bitrate?: number;
  readonly audioFormat: AudioFormat;
  readonly egress?: EgressConfig;
  readonly extraParams?: Readonly<Record<string, string>>;
}

export interface ConfirmSessionMessage {
  readonly type: 'server.confirmSession';
  readonly connectionId: string;
}

export interface AudioInputMessage {
  readonly type: 'client.audioInput';
  readonly reqId: string;
  readonly end: boolean;
  readonly audio: Uint8Array;
  readonly traceContext?: TraceContext;
}

export interface ServerErrorMessage {
  readonly type: 'server.error';
  readonly connectionId: string;
  readonly reqId: string;
  readonly code: number;
  readonly message: string;
}

export interface ResponseAnimationMessage {
  readonly type: 'server.responseAnimation';
  readonly connectionId: string;
  readonly reqId: string;
  readonly end: boolean;
  readonly avatarId: string;
  readonly keyframes: readonly FlameKeyframe[];
}

export interface InterruptMessage {
  readonly type: 'client.interrupt';
  readonly reqId: string;
}

export type MotionMessage =
  | ConfigureSessionMessage
  | ConfirmSessionMessage
  | AudioInputMessage
  | ServerErrorMessage
  | ResponseAnimationMessage
  | InterruptMessage;

export type MotionMessageType = MotionMessage['type'];

/** What a relay needs from an animation envelope, read without decoding the keyframes. */
export interface AnimationHeader {
  readonly connectionId: string;
  readonly reqId: string;
  readonly end: boolean;
  /** Number of keyframes in the envelope. */
  readonly keyframeCount: number;
}

/** `ServerError.code` values seen from Motion Servers. */
export const SERVER_ERROR_CODES = {
  invalidArgument: 3,
  unavailable: 14,
  unauthenticated: 16,
  creditsExhausted: 4001,
  durationExceeded: 4002,
} as const;

/** WebSocket close codes a Motion Server uses. */
export const MOTION_CLOSE_CODES = {
  creditsExhausted: 4001,
  sessionTimeout: 4002,
  concurrencyLimit: 4003,
  authFailed: 4010,
  upstreamUnavailable: 4503,
} as const;
