import { describe, expect, it } from 'vitest';
import { assign, createActor, fromCallback, setup, SimulatedClock, spawnChild, type AnyActorRef } from 'xstate';
import {
  backoffDelay,
  DEFAULT_RECONNECT_POLICY,
  motionLinkMachine,
  type ConnectionCommand,
  type ConnectionEvent,
  type ConnectionInput,
  type MotionLinkOutput,
} from '../../machines/motion-link.js';

/** A fake `connection` actor: the test drives it through the handle of its latest invocation. */
function fakeConnections() {
  const invocations: Array<{ attempt: number; received: ConnectionCommand[]; sendBack: (e: ConnectionEvent) => void; stopped: boolean }> = [];
  const logic = fromCallback<ConnectionCommand, ConnectionInput, ConnectionEvent>(({ sendBack, receive, input }) => {
    const handle = { attempt: input.attempt, received: [] as ConnectionCommand[], sendBack, stopped: false };
    invocations.push(handle);
    receive((command) => handle.received.push(command));
    return () => {
      handle.stopped = true;
    };
  });
  const latest = () => {
    const handle = invocations.at(-1);
    if (handle === undefined) throw new Error('no connection invoked');
    return handle;
  };
  return { logic, invocations, latest };
}

function start(policy = DEFAULT_RECONNECT_POLICY) {
  const connections = fakeConnections();
  const clock = new SimulatedClock();
  const actor = createActor(motionLinkMachine.provide({ actors: { connection: connections.logic } }), {
    clock,
    input: { reconnect: policy },
  });
  const emitted: MotionLinkOutput[] = [];
  actor.on('*', (event) => emitted.push(event as MotionLinkOutput));
  actor.start();
  return { actor, clock, connections, emitted, states: () => emitted.filter((e) => e.type === 'motion.state').map((e) => e.state) };
}

const audio = (end = false) => ({ type: 'motion.audio', pcm: new Int16Array(320), sampleRate: 16000, end }) as const;

describe('machines/motion-link', () => {
  it('connection.ready moves connecting → ready and announces both states', () => {
    const { actor, connections, states } = start();
    expect(actor.getSnapshot().matches({ live: 'connecting' })).toBe(true);
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    expect(actor.getSnapshot().matches({ live: 'ready' })).toBe(true);
    expect(states()).toEqual(['connecting', 'ready']);
  });

  it('motion.audio in ready enters streaming and is forwarded; connection.idle returns to ready', () => {
    const { actor, connections } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send(audio());
    actor.send(audio(true));
    expect(actor.getSnapshot().matches({ live: 'streaming' })).toBe(true);
    expect(connections.latest().received.map((c) => c.type)).toEqual(['motion.audio', 'motion.audio']);
    connections.latest().sendBack({ type: 'connection.idle' });
    expect(actor.getSnapshot().matches({ live: 'ready' })).toBe(true);
  });

  it('motion.audio while connecting is not forwarded (nothing to animate it yet)', () => {
    const { actor, connections } = start();
    actor.send(audio());
    expect(connections.latest().received).toEqual([]);
    expect(actor.getSnapshot().matches({ live: 'connecting' })).toBe(true);
  });

  it('connection.frames and connection.audio are relayed as motion.frames and motion.audio', () => {
    const { connections, emitted } = start();
    const envelope = new Uint8Array([8, 5]);
    connections.latest().sendBack({ type: 'connection.frames', conversationId: 'r1', frames: [envelope], isLast: false, receivedAt: 1 });
    const bytes = new Uint8Array(4);
    connections.latest().sendBack({ type: 'connection.audio', conversationId: 'r1', pcm: new Int16Array(2), sampleRate: 16000, audio: bytes, format: 'pcm_s16le', isLast: true });
    expect(emitted.filter((e) => e.type !== 'motion.state')).toEqual([
      { type: 'motion.frames', conversationId: 'r1', frames: [envelope], isLast: false, receivedAt: 1 },
      { type: 'motion.audio', conversationId: 'r1', pcm: new Int16Array(2), sampleRate: 16000, audio: bytes, format: 'pcm_s16le', isLast: true },
    ]);
  });

  it('motion.interrupt while streaming waits in interrupting for the ack, then reports motion.interrupted', () => {
    const { actor, connections, emitted } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send(audio());
    actor.send({ type: 'motion.interrupt' });
    expect(actor.getSnapshot().matches({ live: 'interrupting' })).toBe(true);
    // Own transport (the machine's default rule): the request is ended, not interrupted.
    expect(connections.latest().received.at(-1)).toEqual({ type: 'connection.interrupt', via: 'end_request' });
    expect(emitted.some((e) => e.type === 'motion.interrupted')).toBe(false);
    connections.latest().sendBack({ type: 'connection.interrupted', streaming: false });
    expect(actor.getSnapshot().matches({ live: 'ready' })).toBe(true);
    expect(emitted.filter((e) => e.type === 'motion.interrupted')).toHaveLength(1);
  });

  it('a reply started before the interrupt ack keeps the link streaming', () => {
    const { actor, connections } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send(audio());
    actor.send({ type: 'motion.interrupt' });
    actor.send(audio());
    expect(connections.latest().received.map((c) => c.type)).toEqual(['motion.audio', 'connection.interrupt', 'motion.audio']);
    connections.latest().sendBack({ type: 'connection.interrupted', streaming: true });
    expect(actor.getSnapshot().matches({ live: 'streaming' })).toBe(true);
  });

  it('with sendsClientInterrupt (egress mode) motion.interrupt asks the connection for CLIENT_INTERRUPT', () => {
    const connections = fakeConnections();
    const actor = createActor(motionLinkMachine.provide({ actors: { connection: connections.logic }, guards: { sendsClientInterrupt: () => true } }), { input: {} });
    actor.start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send(audio());
    actor.send({ type: 'motion.interrupt' });
    expect(connections.latest().received.at(-1)).toEqual({ type: 'connection.interrupt', via: 'client_interrupt' });
    expect(actor.getSnapshot().matches({ live: 'interrupting' })).toBe(true);
    actor.stop();
  });

  it('motion.interrupt with nothing streaming is acknowledged at once', () => {
    const { actor, connections, emitted } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send({ type: 'motion.interrupt' });
    expect(actor.getSnapshot().matches({ live: 'ready' })).toBe(true);
    expect(emitted.filter((e) => e.type === 'motion.interrupted')).toHaveLength(1);
    expect(connections.latest().received).toEqual([]);
  });

  it('a retryable loss reconnects after exponential backoff with a fresh connection, then resets the attempts', () => {
    const policy = { baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 5 };
    const { actor, clock, connections, emitted } = start(policy);
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    const error = new Error('dropped');
    connections.latest().sendBack({ type: 'connection.lost', error, retryable: true });
    expect(actor.getSnapshot().value).toBe('reconnecting');
    expect(connections.invocations[0]?.stopped).toBe(true);
    expect(emitted).toContainEqual({ type: 'motion.error', error, fatal: false });
    clock.increment(99);
    expect(connections.invocations).toHaveLength(1);
    clock.increment(1);
    expect(connections.invocations).toHaveLength(2);
    expect(connections.latest().attempt).toBe(1);
    // Second failure in a row waits twice as long.
    connections.latest().sendBack({ type: 'connection.lost', error, retryable: true });
    clock.increment(199);
    expect(actor.getSnapshot().value).toBe('reconnecting');
    clock.increment(1);
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c3' });
    expect(actor.getSnapshot().matches({ live: 'ready' })).toBe(true);
    expect(actor.getSnapshot().context.attempt).toBe(0);
  });

  it('a non-retryable loss ends in failed with a fatal motion.error', () => {
    const { actor, connections, emitted, states } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    const error = new Error('credits exhausted');
    connections.latest().sendBack({ type: 'connection.lost', error, retryable: false });
    expect(actor.getSnapshot().value).toBe('failed');
    expect(emitted).toContainEqual({ type: 'motion.error', error, fatal: true });
    expect(states().at(-1)).toBe('failed');
    expect(connections.latest().stopped).toBe(true);
  });

  it('used-up reconnect attempts end in failed', () => {
    const policy = { baseDelayMs: 10, maxDelayMs: 10, maxAttempts: 2 };
    const { actor, clock, connections } = start(policy);
    for (let i = 0; i < 2; i += 1) {
      connections.latest().sendBack({ type: 'connection.lost', error: new Error('down'), retryable: true });
      expect(actor.getSnapshot().value).toBe('reconnecting');
      clock.increment(10);
    }
    connections.latest().sendBack({ type: 'connection.lost', error: new Error('down'), retryable: true });
    expect(actor.getSnapshot().value).toBe('failed');
  });

  it('motion.close from any state stops the connection and ends in closed', () => {
    const { actor, connections, states } = start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    actor.send(audio());
    actor.send({ type: 'motion.close' });
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().value).toBe('closed');
    expect(connections.latest().stopped).toBe(true);
    expect(states().at(-1)).toBe('closed');
  });

  it('backoffDelay doubles from the base up to the cap', () => {
    const policy = { baseDelayMs: 250, maxDelayMs: 2000, maxAttempts: 9 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy))).toEqual([250, 500, 1000, 2000, 2000, 2000]);
  });

  it('spawned as a child, the link sends its events to the parent', () => {
    const connections = fakeConnections();
    const link = motionLinkMachine.provide({ actors: { connection: connections.logic } });
    const parent = setup({
      types: { context: {} as { seen: string[] }, events: {} as MotionLinkOutput },
      actors: { motion: link },
    }).createMachine({
      context: { seen: [] },
      entry: spawnChild('motion', { id: 'motion', input: {} }),
      on: {
        '*': { actions: assign({ seen: ({ context, event }) => [...context.seen, event.type] }) },
      },
    });
    const actor = createActor(parent).start();
    connections.latest().sendBack({ type: 'connection.ready', connectionId: 'c1' });
    const child = actor.getSnapshot().children['motion'] as AnyActorRef | undefined;
    if (child === undefined) throw new Error('motion child not spawned');
    child.send({ type: 'motion.interrupt' });
    expect(actor.getSnapshot().context.seen).toEqual(['motion.state', 'motion.state', 'motion.interrupted']);
  });
});
