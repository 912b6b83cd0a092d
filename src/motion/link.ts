/**
 * Binds machines/motion-link.ts to a real Motion Server: the `connection` actor is one
 * MotionClient (token, WebSocket, configure/confirm), opened fresh on every (re)connect.
 *
 *   const motion = createMotionLinkActor({ apiKey, appId, avatarId, ingressEndpointUrl, ... });
 *   // in the session machine: spawnChild(motion, { id: 'motion' }) — or createActor(motion).start()
 */
import { fromCallback } from 'xstate';
import {
  motionLinkMachine,
  type ConnectionCommand,
  type ConnectionEvent,
  type ConnectionInput,
  type ReconnectPolicy,
  DEFAULT_RECONNECT_POLICY,
  backoffDelay,
} from '../../machines/motion-link.js';
import { silentLogger } from '../observability/logger.js';
import { MotionClient, type MotionClientOptions } from './client/motion-client.js';
import { MotionError } from './errors.js';
import { PcmStreamResampler } from './resample.js';

export interface MotionLinkOptions extends MotionClientOptions {
  /** Backoff between reconnects (defaults: 250 ms doubling to 8 s, 6 attempts). */
  readonly reconnect?: Partial<ReconnectPolicy>;
}

function concat(a: Int16Array, b: Int16Array): Int16Array {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out = new Int16Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The real `connection` actor: one MotionClient per invocation, closed when the state is left. */
export function createMotionConnection(options: MotionClientOptions) {
  const log = (options.logger ?? silentLogger()).child({ component: 'motion-link' });
  return fromCallback<ConnectionCommand, ConnectionInput, ConnectionEvent>(({ sendBack, receive, input }) => {
    const client = new MotionClient(options);
    const resampler = new PcmStreamResampler(client.sampleRate);
    const egress = client.egress;
    let stopped = false;
    const report = (event: ConnectionEvent): void => {
      if (!stopped) sendBack(event);
    };

    client.on('animation', (animation) => {
      if (egress) {
        // The server publishes to the room itself: only the (deduplicated) drained signal matters.
        if (animation.end) {
          report({ type: 'connection.frames', conversationId: animation.reqId, frames: [], isLast: true, receivedAt: animation.receivedAt });
        }
        return;
      }
      report({
        type: 'connection.frames',
        conversationId: animation.reqId,
        frames: [animation.bytes],
        isLast: animation.end,
        receivedAt: animation.receivedAt,
      });
    });
    client.on('error', (error) => report({ type: 'connection.warning', error }));
    client.on('idle', () => report({ type: 'connection.idle' }));
    client.on('close', (error) => {
      report({
        type: 'connection.lost',
        error: error ?? new MotionError('Motion Server connection closed', { phase: 'closed', reason: 'closed_by_server', retryable: true }),
        retryable: error?.retryable ?? true,
      });
    });

    log.debug({ attempt: input.attempt }, 'opening Motion Server connection');
    client.connect().then(
      (confirm) => report({ type: 'connection.ready', connectionId: confirm.connectionId }),
      (error: unknown) => {
        const motionError =
          error instanceof MotionError
            ? error
            : new MotionError('Motion Server connection failed', { phase: 'connect', reason: 'network', retryable: true, cause: error });
        report({ type: 'connection.lost', error: motionError, retryable: motionError.retryable });
      },
    );

    receive((command) => {
      if (client.state !== 'open') return; // the machine only forwards while ready/streaming
      if (command.type === 'motion.audio') {
        let pcm = resampler.push(command.pcm, command.sampleRate);
        if (command.end) pcm = concat(pcm, resampler.flush());
        const reqId = client.sendAudio(pcm, command.end);
        if (!egress && (pcm.length > 0 || command.end)) {
          report({ type: 'connection.audio', conversationId: reqId, pcm, sampleRate: client.sampleRate, isLast: command.end });
        }
        return;
      }
      resampler.reset();
      client.interrupt().then(
        () => report({ type: 'connection.interrupted', streaming: client.busy }),
        () => undefined, // the socket is going away; its close is reported as connection.lost
      );
    });

    return () => {
      stopped = true;
      client.close();
      resampler.close();
    };
  });
}

/**
 * The Motion link as an actor logic the session spawns as its `motion` child. Events in:
 * `motion.audio`, `motion.interrupt`, `motion.close`. Events out (to the parent, and emitted):
 * `motion.frames`, `motion.audio`, `motion.interrupted`, `motion.error`, `motion.state`.
 */
export function createMotionLinkActor(options: MotionLinkOptions) {
  const policy: ReconnectPolicy = { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect };
  return motionLinkMachine.provide({
    actors: { connection: createMotionConnection(options) },
    delays: { reconnectDelay: ({ context }) => backoffDelay(context.attempt, policy) },
    guards: {
      canReconnect: ({ context }, params: { retryable: boolean }) => params.retryable && context.attempt < policy.maxAttempts,
    },
  });
}

export type MotionLinkLogic = ReturnType<typeof createMotionLinkActor>;
