/**
 * The session's `motion` child: a Motion Server link (machines/motion-link.ts via src/motion) whose
 * animation envelopes and resampled audio go straight to the client feed callback — the relay
 * does not pass through the session statechart, so it adds no per-envelope machine work.
 */
import { createActor, fromCallback } from 'xstate';
import type { MotionChildCommand } from '../../machines/session.js';
import type { MotionLinkOutput } from '../../machines/motion-link.js';
import { type AvatarFeedMessage, feedFromMotion } from '../motion/feed.js';
import { createMotionLinkActor, type MotionLinkOptions } from '../motion/link.js';

export interface MotionChildOptions {
  readonly link: MotionLinkOptions;
  /** avatar.audio / avatar.frames / avatar.interrupt for the client. */
  readonly onFeed: (message: AvatarFeedMessage) => void;
  /** The link failed (fatal: it gave up; the voice conversation carries on without the avatar). */
  readonly onError: (error: Error, fatal: boolean) => void;
  readonly onState?: (state: string) => void;
}

export function createMotionChild(options: MotionChildOptions) {
  const logic = createMotionLinkActor(options.link);
  return fromCallback<MotionChildCommand>(({ receive }) => {
    const link = createActor(logic, { input: {} });
    const relay = (event: MotionLinkOutput): void => {
      if (event.type === 'motion.error') {
        options.onError(event.error, event.fatal);
        return;
      }
      if (event.type === 'motion.state') {
        options.onState?.(event.state);
        return;
      }
      const message = feedFromMotion(event);
      if (message !== undefined) options.onFeed(message);
    };
    const subscriptions = (['motion.frames', 'motion.audio', 'motion.interrupted', 'motion.error', 'motion.state'] as const).map((type) =>
      link.on(type, (event) => relay(event as MotionLinkOutput)),
    );
    link.start();
    receive((command) => link.send(command));
    return () => {
      link.send({ type: 'motion.close' });
      for (const subscription of subscriptions) subscription.unsubscribe();
      link.stop();
    };
  });
}
