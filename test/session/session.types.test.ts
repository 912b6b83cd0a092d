import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { sessionMachine } from '../../machines/session.js';

describe('session event types', () => {
  it('only well-formed session events compile', () => {
    const actor = createActor(sessionMachine, { input: {} });
    const send = (fn: () => void) => fn; // type-level checks only; nothing is sent
    send(() => actor.send({ type: 'user.text', text: 'hi' }));
    send(() => actor.send({ type: 'session.resume', token: 't' }));
    // @ts-expect-error unknown event type
    send(() => actor.send({ type: 'user.shout' }));
    // @ts-expect-error user.text needs its text
    send(() => actor.send({ type: 'user.text' }));
    // @ts-expect-error session.resume needs the token
    send(() => actor.send({ type: 'session.resume', sessionId: 'x' }));
    // @ts-expect-error vad.speechEnd carries the utterance audio
    send(() => actor.send({ type: 'vad.speechEnd', atMs: 0, durationMs: 1 }));
    expect(actor.getSnapshot().status).toBe('active');
  });
});
