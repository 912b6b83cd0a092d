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
  type MotionInterruptVia,
  type ReconnectPolicy,
  DEFAULT_RECONNECT_POLICY,
  backoffDelay,
} from '../../machines/motion-link.js';
import { concatBytes } from '../audio/ogg.js';
import { isOpusSampleRate, OggOpusWriter } from '../audio/ogg-opus.js';
import type { OpusSampleRate } from '../audio/opus.js';
import { ConfigError } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import { MotionClient, type MotionClientOptions } from './client/motion-client.js';
import { MotionError } from './errors.js';
import { PcmStreamResampler } from './resample.js';

/**
 * How a barge-in reaches the Motion Server. `auto` (default) follows the Server SDK: CLIENT_INTERRUPT
 * for the last req_id in egress mode, the request's end-of-request on voxstate's own transport.
 */
export type MotionInterruptMode = 'auto' | MotionInterruptVia;

export interface MotionLinkOptions extends MotionClientOptions {
  /** Backoff between reconnects (defaults: 250 ms doubling to 8 s, 6 attempts). */
  readonly reconnect?: Partial<ReconnectPolicy>;
  /** Default `auto`: the SDK's rule by mode (see MotionInterruptMode). */
  readonly interruptMode?: MotionInterruptMode;
}

const INTERRUPT_MODES: readonly MotionInterruptMode[] = ['auto', 'client_interrupt', 'end_request'];

/** What a barge-in sends with these options. */
export function interruptVia(options: Pick<MotionLinkOptions, 'interruptMode' | 'egress'>): MotionInterruptVia {
  const mode = options.interruptMode ?? 'auto';
  if (!INTERRUPT_MODES.includes(mode)) throw new ConfigError('interruptMode', `must be one of ${INTERRUPT_MODES.join(', ')}`);
  if (mode !== 'auto') return mode;
  return options.egress === undefined ? 'end_request' : 'client_interrupt';
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** PCM16 as the little-endian bytes the protocol carries. */
function pcmBytes(pcm: Int16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const out = new Uint8Array(pcm.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < pcm.length; i += 1) view.setInt16(i * 2, pcm[i] ?? 0, true);
  return out;
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
    const format = client.audioFormat;
    /** The Ogg Opus stream of the request being sent (`ogg_opus`: one stream per req_id). */
    let ogg: OggOpusWriter | undefined;
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
        let audio: Uint8Array;
        if (format === 'ogg_opus') {
          // A new request (the client has no current req_id) starts a new Ogg stream.
          if (client.currentReqId === undefined || ogg === undefined) {
            ogg = new OggOpusWriter({ sampleRate: client.sampleRate as OpusSampleRate, ...(options.bitrate === undefined ? {} : { bitrate: options.bitrate }) });
          }
          audio = command.end ? concatBytes([ogg.push(pcm), ogg.end()]) : ogg.push(pcm);
          if (command.end) ogg = undefined;
          // Under 20 ms buffered: no packet yet, nothing to send.
          if (audio.length === 0 && !command.end) return;
        } else {
          audio = pcmBytes(pcm);
        }
        const reqId = client.sendAudio(audio, command.end);
        if (!egress && (pcm.length > 0 || command.end)) {
          report({ type: 'connection.audio', conversationId: reqId, pcm, sampleRate: client.sampleRate, audio, format, isLast: command.end });
        }
        return;
      }
      resampler.reset();
      // Own transport: the request's Ogg stream gets its last page with the end; after a
      // CLIENT_INTERRUPT the server drops the request, stream and all.
      const last = ogg?.abort();
      ogg = undefined;
      const sent = command.via === 'client_interrupt' ? client.interrupt() : client.endRequest(last);
      sent.then(
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
  // Checked here, not at the first connect: a bad option is the app's mistake, not a Motion Server's.
  const via = interruptVia(options);
  if (options.audioFormat === 'ogg_opus' && !isOpusSampleRate(options.sampleRate ?? 16000)) {
    throw new ConfigError('sampleRate', 'ogg_opus needs a rate Opus encodes: 8000, 16000, 24000 or 48000');
  }
  return motionLinkMachine.provide({
    actors: { connection: createMotionConnection(options) },
    delays: { reconnectDelay: ({ context }) => backoffDelay(context.attempt, policy) },
    guards: {
      canReconnect: ({ context }, params: { retryable: boolean }) => params.retryable && context.attempt < policy.maxAttempts,
      sendsClientInterrupt: () => via === 'client_interrupt',
    },
  });
}

export type MotionLinkLogic = ReturnType<typeof createMotionLinkActor>;
