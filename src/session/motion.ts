/**
 * The session's `motion` child is the Motion Server link machine itself (machines/motion-link.ts,
 * provided by src/motion/link.ts), spawned in the session's own actor system — so `inspect` sees
 * it and its connection. Its outputs are only emitted (`notifyParent: false`): the avatar relay
 * subscribes to them here and sends them straight to the client feed, adding no per-envelope work
 * to the session statechart.
 */
import type { AnyActorRef } from 'xstate';
import type { MotionLinkOutput } from '../../machines/motion-link.js';
import { type AvatarFeedMessage, feedFromMotion } from '../motion/feed.js';

export interface MotionRelayOptions {
  /** avatar.audio / avatar.frames / avatar.interrupt for the client. */
  readonly onFeed: (message: AvatarFeedMessage) => void;
  /** The link failed (fatal: it gave up; the voice conversation carries on without the avatar). */
  readonly onError: (error: Error, fatal: boolean) => void;
  readonly onState?: (state: string) => void;
}

const OUTPUTS = ['motion.frames', 'motion.audio', 'motion.interrupted', 'motion.error', 'motion.state'] as const;

/** Relays a started link actor's outputs; returns the unsubscribe function. */
export function relayMotion(link: AnyActorRef, options: MotionRelayOptions): () => void {
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
  const subscriptions = OUTPUTS.map((type) => link.on(type, (event) => relay(event as MotionLinkOutput)));
  return () => {
    for (const subscription of subscriptions) subscription.unsubscribe();
  };
}
