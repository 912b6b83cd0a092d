/**
 * The client wire protocol: one zod schema per JSON message, discriminated by `type`.
 * Client → server and server → client are two closed unions; the inferred types are the API.
 * See docs/protocol.md for the prose version of every message.
 */
import { z } from 'zod';
import { ERROR_CODES } from './error-codes.js';

/** The protocol version this build speaks. `session.hello`, `session.resume` and `session.ready` carry it. */
export const PROTOCOL_VERSION = 1;

/** Sample rates a client may choose for websocket PCM16 audio. */
export const SAMPLE_RATES = [16_000, 24_000, 48_000] as const;
export type SampleRate = (typeof SAMPLE_RATES)[number];

const id = z.string().min(1).max(128);
const text = z.string().max(16_000);
const ms = z.number().finite().nonnegative();
/**
 * The public turn states a server reports (`session.state.state`), in the order of docs/protocol.md.
 * The schema accepts any dotted path (a newer server may add sub-states); these are the ones this
 * version produces.
 */
export const SESSION_STATES = [
  'listening',
  'transcribing',
  'thinking',
  'speaking',
  'interrupted.provisional',
  'interrupted.confirming',
  'interrupted.paused',
  'suspended',
  'closed',
] as const;
export type SessionStateName = (typeof SESSION_STATES)[number];

/** What the user's microphone is doing, as the VAD has it (`session.state.voice`). */
export const VOICE_STATES = ['silent', 'speaking', 'paused'] as const;

/** A dotted public state path of the session: `listening`, `speaking`, `interrupted.confirming`. */
const statePath = z
  .string()
  .max(256)
  .regex(/^[A-Za-z][\w-]*(\.[A-Za-z][\w-]*)*$/, 'expected a dotted state path such as interrupted.confirming');
const voiceState = z.enum(VOICE_STATES);
const base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64')
  .refine((value) => value.length % 4 === 0, 'expected base64');

export const audioTransportKindSchema = z.enum(['webrtc', 'websocket']);
export const errorCodeSchema = z.enum(ERROR_CODES);

// ---------------------------------------------------------------- client → server

export const helloAudioSchema = z.object({
  transport: audioTransportKindSchema,
  format: z.literal('pcm16'),
  sampleRate: z.union([z.literal(16_000), z.literal(24_000), z.literal(48_000)]),
  channels: z.literal(1).optional(),
});

export const helloOptionsSchema = z.object({
  /** BCP 47 language of the user's speech, e.g. `en-US`. */
  language: z.string().min(2).max(35).optional(),
  /** A TTS voice name understood by the configured provider. */
  voice: z.string().min(1).max(128).optional(),
  /** Name of a registered playbook to run. */
  playbook: z.string().min(1).max(128).optional(),
  /** Opaque application data echoed into logs and hooks (never interpreted). */
  metadata: z.record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()])).optional(),
});

export const sessionHelloSchema = z.object({
  type: z.literal('session.hello'),
  protocol: z.number().int().positive(),
  token: z.string().min(1).max(4096).optional(),
  audio: helloAudioSchema,
  options: helloOptionsSchema.optional(),
});

export const sessionResumeSchema = z.object({
  type: z.literal('session.resume'),
  sessionId: id,
  resumeToken: z.string().min(1).max(512),
  protocol: z.number().int().positive(),
});

export const webrtcOfferSchema = z.object({
  type: z.literal('webrtc.offer'),
  sdp: z.string().min(1).max(65_536),
  /** When true the server answers without candidates and trickles them as `webrtc.ice`. */
  trickle: z.boolean().optional(),
});

const iceFields = {
  /** The `candidate:...` attribute; `null` marks the end of candidates. */
  candidate: z.string().max(1024).nullable(),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().nonnegative().nullable().optional(),
};

export const clientWebrtcIceSchema = z.object({ type: z.literal('webrtc.ice'), ...iceFields });

export const userTextSchema = z.object({ type: z.literal('user.text'), text: text.min(1) });

export const sessionInterruptSchema = z.object({ type: z.literal('session.interrupt') });

export const playbackProgressSchema = z.object({
  type: z.literal('playback.progress'),
  replyId: id,
  playedMs: ms,
});

export const pingSchema = z.object({ type: z.literal('ping'), t: z.number().finite() });

export const sessionCloseSchema = z.object({
  type: z.literal('session.close'),
  reason: z.string().max(256).optional(),
});

export const clientMessageSchema = z.discriminatedUnion('type', [
  sessionHelloSchema,
  sessionResumeSchema,
  webrtcOfferSchema,
  clientWebrtcIceSchema,
  userTextSchema,
  sessionInterruptSchema,
  playbackProgressSchema,
  pingSchema,
  sessionCloseSchema,
]);

// ---------------------------------------------------------------- server → client

export const iceServerSchema = z.object({
  urls: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  username: z.string().optional(),
  credential: z.string().optional(),
});

/** The audio format the server settled on: PCM16 at the client's rate (websocket) or Opus at 48 kHz (webrtc). */
export const negotiatedAudioSchema = z.object({
  transport: audioTransportKindSchema,
  format: z.enum(['pcm16', 'opus']),
  /** Rate of inbound and outbound audio in Hz. */
  sampleRate: z.union([z.literal(16_000), z.literal(24_000), z.literal(48_000)]),
  channels: z.literal(1),
  /** Duration of one outbound audio frame in ms. */
  frameMs: z.number().int().positive(),
});

export const sessionReadySchema = z.object({
  type: z.literal('session.ready'),
  sessionId: id,
  resumeToken: z.string().min(1).max(512),
  protocol: z.number().int().positive(),
  iceServers: z.array(iceServerSchema),
  audio: negotiatedAudioSchema,
});

export const sessionResumedSchema = z.object({
  type: z.literal('session.resumed'),
  sessionId: id,
  state: statePath,
  voice: voiceState,
  /** A replacement resume token; when present the next resume must use it (the one just used no longer works). */
  resumeToken: z.string().min(1).max(512).optional(),
  /** How many conversation messages the session holds (restored from the store, or kept in memory). */
  historyLength: z.number().int().nonnegative().optional(),
  /** The playbook's current stage, when the session runs one. */
  stage: z.string().max(128).optional(),
});

export const webrtcAnswerSchema = z.object({ type: z.literal('webrtc.answer'), sdp: z.string().min(1).max(65_536) });

export const serverWebrtcIceSchema = z.object({ type: z.literal('webrtc.ice'), ...iceFields });

export const pongSchema = z.object({ type: z.literal('pong'), t: z.number().finite() });

export const sessionStateSchema = z.object({
  type: z.literal('session.state'),
  /** The turn: one of SESSION_STATES. */
  state: statePath,
  /** The user's voice: silent, speaking or paused (a short pause inside an utterance). */
  voice: voiceState,
  /** `state` before this message (equal to `state` when only the voice changed); absent on the first. */
  previous: statePath.optional(),
});

export const vadSpeechStartSchema = z.object({ type: z.literal('vad.speech_start'), atMs: ms });

export const vadSpeechEndSchema = z.object({
  type: z.literal('vad.speech_end'),
  atMs: ms,
  /** Wall time from the start of speech to its end, pauses included. */
  durationMs: ms,
  /** Voiced time only (the VAD's speech windows), pauses excluded. */
  voicedMs: ms,
});

export const interruptionFalseSchema = z.object({
  type: z.literal('interruption.false'),
  replyId: id,
  voicedMs: ms,
});

export const interruptionConfirmedSchema = z.object({
  type: z.literal('interruption.confirmed'),
  replyId: id,
  voicedMs: ms,
  by: z.enum(['voice', 'words', 'client', 'text']),
});

export const transcriptPartialSchema = z.object({ type: z.literal('transcript.partial'), text });

export const transcriptFinalSchema = z.object({ type: z.literal('transcript.final'), text });

export const replyDeltaSchema = z.object({ type: z.literal('reply.delta'), replyId: id, text });

export const replyDoneSchema = z.object({
  type: z.literal('reply.done'),
  replyId: id,
  /** What the user actually heard (truncated when interrupted). */
  text: z.string().max(200_000),
  interrupted: z.boolean(),
});

export const replyAudioStartSchema = z.object({
  type: z.literal('reply.audio_start'),
  replyId: id,
  sampleRate: z.number().int().positive(),
});

export const replyAudioEndSchema = z.object({ type: z.literal('reply.audio_end'), replyId: id });

export const toolStartSchema = z.object({
  type: z.literal('tool.start'),
  replyId: id,
  callId: id,
  name: z.string().min(1).max(128),
  arguments: z.unknown(),
});

export const toolEndSchema = z.object({
  type: z.literal('tool.end'),
  replyId: id,
  callId: id,
  name: z.string().min(1).max(128),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().max(4096).optional(),
});

/** Why a playbook's stage changed (src/playbook/types.ts StageChangeReason). */
const stageReasonSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('start') }),
  z.object({ kind: z.literal('resume') }),
  z.object({ kind: z.literal('toolCall'), tool: z.string().max(128) }),
  z.object({ kind: z.literal('keyword'), keyword: z.string().max(256) }),
  z.object({ kind: z.literal('intent'), intent: z.string().max(128) }),
  z.object({ kind: z.literal('llmDecision') }),
  z.object({ kind: z.literal('maxTurns'), turns: z.number().int().min(0) }),
  z.object({ kind: z.literal('timeout'), afterMs: ms }),
  z.object({ kind: z.literal('custom'), label: z.string().max(256) }),
]);

export const stageChangeSchema = z.object({
  type: z.literal('stage.change'),
  /** null: the playbook's first stage. */
  from: z.string().max(128).nullable(),
  /** null: the playbook completed. */
  to: z.string().min(1).max(128).nullable(),
  reason: stageReasonSchema,
});

export const metricsTurnSchema = z.object({
  type: z.literal('metrics.turn'),
  turnId: id,
  /** Voice turns: the end of the user's last voiced window → first agent audio frame on the transport. */
  userStoppedToFirstAudioMs: ms.optional(),
  /** Voice turns: that audio edge → the end-of-turn decision. */
  endpointingMs: ms.optional(),
  /** Voice turns: the end-of-turn decision → first agent audio frame. */
  speechEndToFirstAudioMs: ms.optional(),
  /** Voice turns: the audio edge → the final transcript. */
  sttFinalLagMs: ms.optional(),
  llmFirstTokenMs: ms.optional(),
  ttsFirstAudioMs: ms.optional(),
  preemptive: z.enum(['used', 'discarded', 'off']).optional(),
});

export const sessionIdleSchema = z.object({
  type: z.literal('session.idle'),
  /** Idle prompts made before this one (the agent re-prompts up to maxIdlePrompts, then closes the session). */
  prompts: z.number().int().min(0),
});

export const avatarAudioSchema = z.object({
  type: z.literal('avatar.audio'),
  audio: base64,
  isLast: z.boolean(),
  conversationId: id,
});

export const avatarFramesSchema = z.object({
  type: z.literal('avatar.frames'),
  frames: z.array(base64),
  isLast: z.boolean(),
  conversationId: id,
});

export const avatarInterruptSchema = z.object({ type: z.literal('avatar.interrupt'), reason: z.string().max(256) });

export const errorMessageSchema = z.object({
  type: z.literal('error'),
  code: errorCodeSchema,
  message: z.string().max(4096),
  /** True when the server closes the connection right after this message. */
  fatal: z.boolean(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  sessionReadySchema,
  sessionResumedSchema,
  webrtcAnswerSchema,
  serverWebrtcIceSchema,
  pongSchema,
  sessionStateSchema,
  vadSpeechStartSchema,
  vadSpeechEndSchema,
  interruptionFalseSchema,
  interruptionConfirmedSchema,
  transcriptPartialSchema,
  transcriptFinalSchema,
  replyDeltaSchema,
  replyDoneSchema,
  replyAudioStartSchema,
  replyAudioEndSchema,
  toolStartSchema,
  toolEndSchema,
  stageChangeSchema,
  metricsTurnSchema,
  sessionIdleSchema,
  avatarAudioSchema,
  avatarFramesSchema,
  avatarInterruptSchema,
  errorMessageSchema,
]);

// ---------------------------------------------------------------- types

export type AudioTransportKind = z.infer<typeof audioTransportKindSchema>;
export type HelloAudio = z.infer<typeof helloAudioSchema>;
export type HelloOptions = z.infer<typeof helloOptionsSchema>;
export type NegotiatedAudio = z.infer<typeof negotiatedAudioSchema>;
export type IceServer = z.infer<typeof iceServerSchema>;

export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export type ServerMessageType = ServerMessage['type'];
/** The client message whose `type` is `T`. */
export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;
/** The server message whose `type` is `T`. */
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

export type SessionHello = ClientMessageOf<'session.hello'>;
export type SessionResume = ClientMessageOf<'session.resume'>;
export type SessionReady = ServerMessageOf<'session.ready'>;
export type SessionResumed = ServerMessageOf<'session.resumed'>;
export type SessionStateMessage = ServerMessageOf<'session.state'>;
export type VoiceState = (typeof VOICE_STATES)[number];
export type IceCandidateMessage = ClientMessageOf<'webrtc.ice'>;
export type ErrorMessage = ServerMessageOf<'error'>;

/** Client message types, in the order of docs/protocol.md. */
export const CLIENT_MESSAGE_TYPES = clientMessageSchema.options.map((option) => option.shape.type.value);
/** Server message types, in the order of docs/protocol.md. */
export const SERVER_MESSAGE_TYPES = serverMessageSchema.options.map((option) => option.shape.type.value);
