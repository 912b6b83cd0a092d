import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  descriptorFromProto,
  descriptorPath,
  protoPath,
  renderDescriptorModule,
} from '../../src/motion/protocol/generate-descriptor.js';
import { decodeMessage, encodeMessage, MESSAGE_TYPE, peekEnvelope, type FlameKeyframe, type MotionMessage } from '../../src/motion/protocol/index.js';

function keyframe(seed: number): FlameKeyframe {
  const fill = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.fround((seed + k + i) / 64));
  return {
    translation: fill(3, 1),
    rotation: fill(3, 2),
    neckPose: fill(3, 3),
    jawPose: fill(3, 4),
    eyePose: fill(6, 5),
    eyeLid: fill(2, 6),
    expression: fill(100, 7),
  };
}

const samples: MotionMessage[] = [
  { type: 'client.configureSession', sampleRate: 16000, bitrate: 0, audioFormat: 'pcm_s16le', extraParams: {} },
  {
    type: 'client.configureSession',
    sampleRate: 24000,
    bitrate: 32000,
    audioFormat: 'ogg_opus',
    extraParams: { quality: 'high' },
    egress: {
      type: 'livekit',
      url: 'wss://lk.example',
      apiKey: 'k',
      apiSecret: 's',
      roomName: 'room',
      publisherId: 'avatar-1',
      extraAttributes: { a: 'b' },
      idleTimeout: 30,
      apiToken: '',
    },
  },
  {
    type: 'client.configureSession',
    sampleRate: 48000,
    bitrate: 0,
    audioFormat: 'pcm_s16le',
    extraParams: {},
    egress: { type: 'agora', channelName: 'ch', token: 't', uid: 42, publisherId: 'p' },
  },
  { type: 'server.confirmSession', connectionId: 'conn_1' },
  { type: 'client.audioInput', reqId: '20250101120000_abcdefghijkl', end: false, audio: new Uint8Array([1, 2, 3, 4]) },
  {
    type: 'client.audioInput',
    reqId: '20250101120000_abcdefghijkl',
    end: true,
    audio: new Uint8Array(0),
    traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: '' },
  },
  { type: 'server.error', connectionId: 'conn_1', reqId: 'r', code: 4001, message: 'credits exhausted' },
  { type: 'server.responseAnimation', connectionId: 'conn_1', reqId: 'r1', end: false, avatarId: 'av', keyframes: [keyframe(1), keyframe(2)] },
  { type: 'server.responseAnimation', connectionId: 'conn_1', reqId: 'r1', end: true, avatarId: 'av', keyframes: [] },
  { type: 'client.interrupt', reqId: 'r1' },
];

/** Appends a field the schema does not know (field 99, length-delimited) to an encoded message. */
function withUnknownField(bytes: Uint8Array, field: number, payload: string): Uint8Array {
  const writer = protobuf.Writer.create();
  writer.uint32((field << 3) | 2).string(payload);
  const extra = writer.finish();
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  return out;
}

describe('motion envelope codec', () => {
  it.each(samples.map((m) => [m.type, m] as const))('encodeMessage → decodeMessage round-trips %s', (_type, message) => {
    const decoded = decodeMessage(encodeMessage(message));
    expect(decoded).toEqual(message);
  });

  it('encodes the documented field numbers (Message.type = 1, client_audio_input = 4, req_id = 1)', () => {
    const bytes = encodeMessage({ type: 'client.audioInput', reqId: 'r', end: true, audio: new Uint8Array([9]) });
    const reader = protobuf.Reader.create(bytes);
    expect(reader.uint32()).toBe((1 << 3) | 0);
    expect(reader.int32()).toBe(MESSAGE_TYPE.clientAudioInput);
    expect(reader.uint32()).toBe((4 << 3) | 2);
    reader.uint32();
    expect(reader.uint32()).toBe((1 << 3) | 2);
    expect(reader.string()).toBe('r');
  });

  it('decodeMessage throws ProtocolError on bytes that are not a Message', () => {
    expect(() => decodeMessage(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))).toThrow(ProtocolError);
    expect(() => decodeMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(ProtocolError);
  });

  it('decodeMessage throws ProtocolError when the type is unknown or disagrees with the payload', () => {
    expect(() => decodeMessage(new Uint8Array([0x08, 0x06]))).toThrow(/unknown message type 6/);
    const interrupt = encodeMessage({ type: 'client.interrupt', reqId: 'r' });
    const mislabeled = interrupt.slice();
    mislabeled[1] = MESSAGE_TYPE.clientAudioInput;
    expect(() => decodeMessage(mislabeled)).toThrow(ProtocolError);
    expect(() => decodeMessage(new Uint8Array(0))).toThrow(ProtocolError);
  });

  it('an envelope with unknown fields still decodes, and the relayed bytes keep them unchanged', () => {
    const original = encodeMessage(samples[7] as MotionMessage);
    const received = withUnknownField(original, 99, 'future-field');
    const decoded = decodeMessage(received);
    expect(decoded).toEqual(samples[7]);
    const peek = peekEnvelope(received);
    expect(peek.animation).toEqual({ connectionId: 'conn_1', reqId: 'r1', end: false, keyframeCount: 2 });
    // The relay forwards `received` itself; re-encoding would lose field 99.
    expect(Buffer.from(received).includes(Buffer.from('future-field'))).toBe(true);
    expect(Buffer.from(encodeMessage(decoded)).includes(Buffer.from('future-field'))).toBe(false);
  });

  it('peekEnvelope reads req_id/end without decoding keyframes and rejects truncated bytes', () => {
    const bytes = encodeMessage({ type: 'server.responseAnimation', connectionId: 'c', reqId: 'q', end: true, avatarId: 'a', keyframes: [keyframe(3)] });
    expect(peekEnvelope(bytes)).toEqual({ type: MESSAGE_TYPE.serverResponseAnimation, animation: { connectionId: 'c', reqId: 'q', end: true, keyframeCount: 1 } });
    expect(() => peekEnvelope(bytes.subarray(0, bytes.length - 5))).toThrow(ProtocolError);
    expect(peekEnvelope(encodeMessage({ type: 'client.interrupt', reqId: 'r' }))).toEqual({ type: MESSAGE_TYPE.clientInterrupt });
  });

  it('descriptor.ts is generated from motion.proto (regenerate with generate-descriptor.ts)', () => {
    const rendered = renderDescriptorModule(descriptorFromProto(readFileSync(protoPath, 'utf8')));
    expect(readFileSync(descriptorPath, 'utf8')).toBe(rendered);
  });
});
