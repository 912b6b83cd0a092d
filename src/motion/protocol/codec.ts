/**
 * Pure codec for Motion Server envelopes: bytes in, typed messages out, and back. No sockets here.
 * The schema is motion.proto, compiled into `descriptor.ts` (see generate-descriptor.ts).
 */
import protobuf from 'protobufjs/light.js';
import { ProtocolError } from '../../errors.js';
import { motionDescriptor } from './descriptor.js';
import type {
  AnimationHeader,
  AudioFormat,
  EgressConfig,
  FlameKeyframe,
  FloatVector,
  MotionMessage,
} from './types.js';

const root = protobuf.Root.fromJSON(motionDescriptor as protobuf.INamespace);
const MessageType = root.lookupType('Message');

/** `MessageType` enum values. */
export const MESSAGE_TYPE = {
  unspecified: 0,
  clientConfigureSession: 1,
  serverConfirmSession: 2,
  clientAudioInput: 3,
  serverError: 4,
  serverResponseAnimation: 5,
  clientInterrupt: 7,
} as const;

const AUDIO_FORMAT = { pcm_s16le: 0, ogg_opus: 1 } as const;
const EGRESS_TYPE = { unspecified: 0, livekit: 1, agora: 2 } as const;

/** protobufjs plain objects are loosely typed; this is the shape we read them through. */
type Plain = Record<string, unknown>;

function malformed(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError('protocol_invalid_message', `motion envelope: ${message}`, cause === undefined ? {} : { cause });
}

function vector(values: FloatVector): number[] | Float32Array {
  return values instanceof Float32Array ? values : [...values];
}

function keyframeToPlain(frame: FlameKeyframe): Plain {
  return {
    translation: vector(frame.translation),
    rotation: vector(frame.rotation),
    neck_pose: vector(frame.neckPose),
    jaw_pose: vector(frame.jawPose),
    eye_pose: vector(frame.eyePose),
    eye_lid: vector(frame.eyeLid),
    expression: vector(frame.expression),
  };
}

function egressToPlain(egress: EgressConfig | undefined): Plain {
  if (egress === undefined) return { egress_type: EGRESS_TYPE.unspecified };
  if (egress.type === 'livekit') {
    return {
      egress_type: EGRESS_TYPE.livekit,
      livekit_egress: {
        url: egress.url,
        api_key: egress.apiKey,
        api_secret: egress.apiSecret,
        room_name: egress.roomName,
        publisher_id: egress.publisherId ?? '',
        extra_attributes: { ...egress.extraAttributes },
        idle_timeout: egress.idleTimeout ?? 0,
        api_token: egress.apiToken ?? '',
      },
    };
  }
  return {
    egress_type: EGRESS_TYPE.agora,
    agora_egress: {
      channel_name: egress.channelName,
      token: egress.token,
      uid: egress.uid,
      publisher_id: egress.publisherId ?? '',
    },
  };
}

function toPlain(message: MotionMessage): Plain {
  switch (message.type) {
    case 'client.configureSession':
      return {
        type: MESSAGE_TYPE.clientConfigureSession,
        client_configure_session: {
          sample_rate: message.sampleRate,
          bitrate: message.bitrate ?? 0,
          audio_format: AUDIO_FORMAT[message.audioFormat],
          transport_compression: 0,
          extra_params: { ...message.extraParams },
          ...egressToPlain(message.egress),
        },
      };
    case 'server.confirmSession':
      return {
        type: MESSAGE_TYPE.serverConfirmSession,
        server_confirm_session: { connection_id: message.connectionId },
      };
    case 'client.audioInput':
      return {
        type: MESSAGE_TYPE.clientAudioInput,
        client_audio_input: {
          req_id: message.reqId,
          end: message.end,
          audio: message.audio,
          ...(message.traceContext === undefined
            ? {}
            : {
                trace_context: {
                  traceparent: message.traceContext.traceparent,
                  tracestate: message.traceContext.tracestate ?? '',
                },
              }),
        },
      };
    case 'server.error':
      return {
        type: MESSAGE_TYPE.serverError,
        server_error: {
          connection_id: message.connectionId,
          req_id: message.reqId,
          code: message.code,
          message: message.message,
        },
      };
    case 'server.responseAnimation':
      return {
        type: MESSAGE_TYPE.serverResponseAnimation,
        server_response_animation: {
          connection_id: message.connectionId,
          req_id: message.reqId,
          end: message.end,
          animation: { keyframes: message.keyframes.map(keyframeToPlain) },
          avatar_id: message.avatarId,
        },
      };
    case 'client.interrupt':
      return { type: MESSAGE_TYPE.clientInterrupt, client_interrupt: { req_id: message.reqId } };
  }
}

/** Serializes one envelope. */
export function encodeMessage(message: MotionMessage): Uint8Array {
  return MessageType.encode(toPlain(message)).finish();
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}
function obj(value: unknown): Plain {
  return typeof value === 'object' && value !== null ? (value as Plain) : {};
}
function floats(value: unknown): number[] {
  return Array.isArray(value) ? (value as number[]) : [];
}
function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(obj(value))) out[key] = str(item);
  return out;
}

function keyframeFromPlain(plain: Plain): FlameKeyframe {
  return {
    translation: floats(plain['translation']),
    rotation: floats(plain['rotation']),
    neckPose: floats(plain['neck_pose']),
    jawPose: floats(plain['jaw_pose']),
    eyePose: floats(plain['eye_pose']),
    eyeLid: floats(plain['eye_lid']),
    expression: floats(plain['expression']),
  };
}

function egressFromPlain(plain: Plain): EgressConfig | undefined {
  const type = num(plain['egress_type']);
  if (type === EGRESS_TYPE.livekit) {
    const lk = obj(plain['livekit_egress']);
    return {
      type: 'livekit',
      url: str(lk['url']),
      apiKey: str(lk['api_key']),
      apiSecret: str(lk['api_secret']),
      roomName: str(lk['room_name']),
      publisherId: str(lk['publisher_id']),
      extraAttributes: stringMap(lk['extra_attributes']),
      idleTimeout: num(lk['idle_timeout']),
      apiToken: str(lk['api_token']),
    };
  }
  if (type === EGRESS_TYPE.agora) {
    const ag = obj(plain['agora_egress']);
    return {
      type: 'agora',
      channelName: str(ag['channel_name']),
      token: str(ag['token']),
      uid: num(ag['uid']),
      publisherId: str(ag['publisher_id']),
    };
  }
  if (type !== EGRESS_TYPE.unspecified) throw malformed(`unknown egress_type ${type}`);
  return undefined;
}

function audioFormatFromPlain(value: unknown): AudioFormat {
  const format = num(value);
  if (format === AUDIO_FORMAT.pcm_s16le) return 'pcm_s16le';
  if (format === AUDIO_FORMAT.ogg_opus) return 'ogg_opus';
  throw malformed(`unknown audio_format ${format}`);
}

/** The oneof member each `MessageType` must carry. */
const PAYLOAD_FIELD: Record<number, string> = {
  [MESSAGE_TYPE.clientConfigureSession]: 'client_configure_session',
  [MESSAGE_TYPE.serverConfirmSession]: 'server_confirm_session',
  [MESSAGE_TYPE.clientAudioInput]: 'client_audio_input',
  [MESSAGE_TYPE.serverError]: 'server_error',
  [MESSAGE_TYPE.serverResponseAnimation]: 'server_response_animation',
  [MESSAGE_TYPE.clientInterrupt]: 'client_interrupt',
};

/**
 * Parses one envelope. Throws `ProtocolError` (`protocol_invalid_message`) when the bytes are not a
 * `Message`, the type is unknown, or the type and the payload disagree. Unknown fields are ignored
 * (relays forward the original bytes, which keep them).
 */
export function decodeMessage(bytes: Uint8Array): MotionMessage {
  let plain: Plain;
  try {
    plain = MessageType.toObject(MessageType.decode(bytes), { defaults: true, arrays: true, objects: true }) as Plain;
  } catch (error) {
    throw malformed('not a protobuf Message', error);
  }
  const type = num(plain['type']);
  const field = PAYLOAD_FIELD[type];
  if (field === undefined) throw malformed(`unknown message type ${type}`);
  const data = plain[field];
  if (typeof data !== 'object' || data === null) throw malformed(`type ${type} without its ${field} payload`);
  const payload = data as Plain;
  switch (type) {
    case MESSAGE_TYPE.clientConfigureSession: {
      const egress = egressFromPlain(payload);
      return {
        type: 'client.configureSession',
        sampleRate: num(payload['sample_rate']),
        bitrate: num(payload['bitrate']),
        audioFormat: audioFormatFromPlain(payload['audio_format']),
        ...(egress === undefined ? {} : { egress }),
        extraParams: stringMap(payload['extra_params']),
      };
    }
    case MESSAGE_TYPE.serverConfirmSession:
      return {
        type: 'server.confirmSession',
        connectionId: str(payload['connection_id']),
      };
    case MESSAGE_TYPE.clientAudioInput: {
      const audio = payload['audio'];
      const trace = payload['trace_context'];
      return {
        type: 'client.audioInput',
        reqId: str(payload['req_id']),
        end: payload['end'] === true,
        audio: audio instanceof Uint8Array ? new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength) : new Uint8Array(0),
        ...(typeof trace === 'object' && trace !== null
          ? { traceContext: { traceparent: str(obj(trace)['traceparent']), tracestate: str(obj(trace)['tracestate']) } }
          : {}),
      };
    }
    case MESSAGE_TYPE.serverError:
      return {
        type: 'server.error',
        connectionId: str(payload['connection_id']),
        reqId: str(payload['req_id']),
        code: num(payload['code']),
        message: str(payload['message']),
      };
    case MESSAGE_TYPE.serverResponseAnimation: {
      const keyframes = obj(payload['animation'])['keyframes'];
      return {
        type: 'server.responseAnimation',
        connectionId: str(payload['connection_id']),
        reqId: str(payload['req_id']),
        end: payload['end'] === true,
        avatarId: str(payload['avatar_id']),
        keyframes: Array.isArray(keyframes) ? (keyframes as unknown[]).map((k) => keyframeFromPlain(obj(k))) : [],
      };
    }
    default:
      return { type: 'client.interrupt', reqId: str(payload['req_id']) };
  }
}

// ---------------------------------------------------------------------------------------------
// Relay fast path: read the envelope's type, and for animations req_id / end / keyframe count,
// without materializing the keyframes. The relay forwards the original bytes.

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;

function readAnimationHeader(reader: protobuf.Reader, end: number): AnimationHeader {
  let connectionId = '';
  let reqId = '';
  let isEnd = false;
  let keyframeCount = 0;
  while (reader.pos < end) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LENGTH) connectionId = reader.string();
    else if (field === 2 && wire === WIRE_LENGTH) reqId = reader.string();
    else if (field === 3 && wire === WIRE_VARINT) isEnd = reader.bool();
    else if (field === 4 && wire === WIRE_LENGTH) {
      const animationEnd = reader.uint32() + reader.pos;
      while (reader.pos < animationEnd) {
        const inner = reader.uint32();
        if (inner >>> 3 === 1 && (inner & 7) === WIRE_LENGTH) keyframeCount += 1;
        reader.skipType(inner & 7);
      }
    } else reader.skipType(wire);
  }
  if (reader.pos !== end) throw new RangeError('animation payload overruns its length');
  return { connectionId, reqId, end: isEnd, keyframeCount };
}

export interface EnvelopePeek {
  /** `MessageType` value (see MESSAGE_TYPE). */
  readonly type: number;
  /** Present when the envelope carries a `server_response_animation`. */
  readonly animation?: AnimationHeader;
}

/**
 * Reads only what a relay needs. Throws `ProtocolError` on bytes that are not a well-formed
 * `Message`. Anything that is not an animation should then go through `decodeMessage`.
 */
export function peekEnvelope(bytes: Uint8Array): EnvelopePeek {
  try {
    const reader = protobuf.Reader.create(bytes);
    let type = 0;
    let animation: AnimationHeader | undefined;
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === 0) throw new RangeError('field number 0');
      if (field === 1 && wire === WIRE_VARINT) type = reader.int32();
      else if (field === 6 && wire === WIRE_LENGTH) {
        const end = reader.uint32() + reader.pos;
        if (end > reader.len) throw new RangeError('animation payload overruns the envelope');
        animation = readAnimationHeader(reader, end);
      } else reader.skipType(wire);
    }
    return animation === undefined ? { type } : { type, animation };
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw malformed('not a protobuf Message', error);
  }
}
