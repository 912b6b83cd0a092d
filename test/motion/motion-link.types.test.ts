import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { motionLinkMachine } from '../../machines/motion-link.js';

describe('motion-link event types', () => {
  it('rejects malformed commands at compile time', () => {
    const actor = createActor(motionLinkMachine, { input: {} });
    // @ts-expect-error motion.audio needs pcm, sampleRate and end
    actor.send({ type: 'motion.audio' });
    // @ts-expect-error pcm is Int16Array, not Float32Array
    actor.send({ type: 'motion.audio', pcm: new Float32Array(1), sampleRate: 16000, end: false });
    // @ts-expect-error unknown event type
    actor.send({ type: 'motion.pause' });
    // @ts-expect-error how a barge-in goes on the wire is the link's rule (interruptMode), not the parent's
    actor.send({ type: 'connection.interrupt', via: 'client_interrupt' });
    // @ts-expect-error motion.interrupt takes no wire choice either
    actor.send({ type: 'motion.interrupt', via: 'end_request' });
    actor.send({ type: 'motion.audio', pcm: new Int16Array(1), sampleRate: 16000, end: true });
    expect(actor.getSnapshot().status).toBe('active');
  });
});
