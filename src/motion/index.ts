export * from './protocol/index.js';
export * from './client/index.js';
export { MotionError, closeError, upgradeError, serverErrorRetryable, type MotionPhase, type MotionReason, type MotionErrorOptions } from './errors.js';
export { createMotionLinkActor, createMotionConnection, type MotionLinkOptions, type MotionLinkLogic } from './link.js';
export {
  avatarAudio,
  avatarFrames,
  avatarInterrupt,
  feedFromMotion,
  pcmToBase64,
  toDemoShape,
  type AvatarAudioMessage,
  type AvatarFeedMessage,
  type AvatarFramesMessage,
  type AvatarInterruptMessage,
  type DemoFeedMessage,
} from './feed.js';
export { PcmStreamResampler } from './resample.js';
export * from './local-server/index.js';
