/**
 * The client feed: what a voxstate server relays to an AvatarKit client, as pure functions.
 *
 *   avatar.audio      { audio: base64 of the bytes sent to the Motion Server (PCM16LE mono, or
 *                       Ogg Opus pages), isLast, conversationId }
 *   avatar.frames     { frames: [base64 envelope], isLast, conversationId }
 *   avatar.interrupt  { reason }
 *
 * `frames` are the Motion Server's binary envelopes exactly as received (never re-encoded), and
 * `conversationId` is the reply's req_id, identical on its audio and its frames — AvatarKit drops
 * frames tagged with another conversation id. `toDemoShape` maps each message to the official
 * demo's JSON (`avatar_audio`, `avatar_frames`, `interrupt`) for clients written against it.
 */
import { endianness } from 'node:os';
import type { MotionLinkOutput } from '../../machines/motion-link.js';

export interface AvatarAudioMessage {
  readonly type: 'avatar.audio';
  readonly audio: string;
  readonly isLast: boolean;
  readonly conversationId: string;
}

export interface AvatarFramesMessage {
  readonly type: 'avatar.frames';
  readonly frames: readonly string[];
  readonly isLast: boolean;
  readonly conversationId: string;
}

export interface AvatarInterruptMessage {
  readonly type: 'avatar.interrupt';
  readonly reason: string;
}

export type AvatarFeedMessage = AvatarAudioMessage | AvatarFramesMessage | AvatarInterruptMessage;

/** The official demo's shapes. */
export type DemoFeedMessage =
  | { readonly type: 'avatar_audio'; readonly audio: string; readonly isLast: boolean }
  | { readonly type: 'avatar_frames'; readonly frames: readonly string[]; readonly isLast: boolean }
  | { readonly type: 'interrupt'; readonly reason: string };

const LITTLE_ENDIAN = endianness() === 'LE';

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** PCM16 → base64 of its little-endian bytes (what AvatarKit's yieldAudioData expects). */
export function pcmToBase64(pcm: Int16Array): string {
  if (LITTLE_ENDIAN) return base64(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  const bytes = new Uint8Array(pcm.byteLength);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < pcm.length; i += 1) view.setInt16(i * 2, pcm[i] ?? 0, true);
  return base64(bytes);
}

/**
 * `audio`, when given, is the bytes exactly as the link sent them to the Motion Server (PCM16LE, or
 * the Ogg Opus pages with `audioFormat: 'ogg_opus'`); otherwise `pcm` is sent as PCM16LE.
 */
export function avatarAudio(input: {
  readonly pcm: Int16Array;
  readonly audio?: Uint8Array;
  readonly isLast: boolean;
  readonly conversationId: string;
}): AvatarAudioMessage {
  const audio = input.audio === undefined ? pcmToBase64(input.pcm) : base64(input.audio);
  return { type: 'avatar.audio', audio, isLast: input.isLast, conversationId: input.conversationId };
}

export function avatarFrames(input: {
  readonly frames: readonly Uint8Array[];
  readonly isLast: boolean;
  readonly conversationId: string;
}): AvatarFramesMessage {
  return { type: 'avatar.frames', frames: input.frames.map(base64), isLast: input.isLast, conversationId: input.conversationId };
}

export function avatarInterrupt(reason = 'barge_in'): AvatarInterruptMessage {
  return { type: 'avatar.interrupt', reason };
}

/**
 * The feed message for a Motion link event, or undefined when there is nothing to relay
 * (state/error events, and egress mode, where `motion.frames` carries no frames: the Motion
 * Server publishes audio and motion into the LiveKit room / Agora channel itself).
 */
export function feedFromMotion(event: MotionLinkOutput, interruptReason = 'barge_in'): AvatarFeedMessage | undefined {
  switch (event.type) {
    case 'motion.audio':
      return avatarAudio(event);
    case 'motion.frames':
      return event.frames.length === 0 ? undefined : avatarFrames(event);
    case 'motion.interrupted':
      return avatarInterrupt(interruptReason);
    default:
      return undefined;
  }
}

/** The official demo's JSON for a feed message (it has no conversationId field). */
export function toDemoShape(message: AvatarFeedMessage): DemoFeedMessage {
  switch (message.type) {
    case 'avatar.audio':
      return { type: 'avatar_audio', audio: message.audio, isLast: message.isLast };
    case 'avatar.frames':
      return { type: 'avatar_frames', frames: message.frames, isLast: message.isLast };
    case 'avatar.interrupt':
      return { type: 'interrupt', reason: message.reason };
  }
}
