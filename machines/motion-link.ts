/**
 * The Motion Server link: one logical connection that survives drops.
 *
 *   live.connecting → live.ready ⇄ live.streaming → live.interrupting → live.ready
 *   live.* ── connection.lost (retryable, attempts left) ──▶ reconnecting ── reconnectDelay ──▶ live
 *   live.* ── connection.lost (fatal, or attempts used up) ──▶ failed
 *   any ── motion.close ──▶ closed
 *
 * Barge-in follows the Server SDK's rule by mode (the `sendsClientInterrupt` guard, provided from
 * the link's `interruptMode`): in egress mode the connection sends CLIENT_INTERRUPT for the last
 * req_id; on voxstate's own transport it ends the request (its end-of-request) instead. Either way
 * frames of that request are dropped from then on and the parent hears `motion.interrupted`.
 *
 * Pure: the socket lives in the `connection` actor (a fromCallback the session provides — see
 * src/motion/link.ts). Leaving `live` stops that actor, and re-entering it opens a fresh connection
 * (the protocol has no resume). Everything the parent needs is sent to it (and `emit`ted, so a
 * standalone actor can be observed with `actor.on(...)`).
 */
import { assign, enqueueActions, fromCallback, sendTo, setup, type AnyActorRef } from 'xstate';

/** Agent speech for the current reply. `end` closes the reply (its req_id). */
export interface MotionAudioCommand {
  readonly type: 'motion.audio';
  readonly pcm: Int16Array;
  readonly sampleRate: number;
  readonly end: boolean;
}
export interface MotionInterruptCommand {
  readonly type: 'motion.interrupt';
}
export interface MotionCloseCommand {
  readonly type: 'motion.close';
}

/** What the link accepts from its parent. */
export type MotionLinkCommand = MotionAudioCommand | MotionInterruptCommand | MotionCloseCommand;

/**
 * How a barge-in reaches the Motion Server: `client_interrupt` sends CLIENT_INTERRUPT for the last
 * req_id (the SDK, egress mode); `end_request` stops sending and ends the request with its
 * end-of-request message (the SDK, own transport).
 */
export type MotionInterruptVia = 'client_interrupt' | 'end_request';

/** Audio formats of the Motion protocol (ClientConfigureSession.audio_format). */
export type MotionAudioFormat = 'pcm_s16le' | 'ogg_opus';

export interface ConnectionInterruptCommand {
  readonly type: 'connection.interrupt';
  readonly via: MotionInterruptVia;
}

/** What the `connection` actor receives (forwarded by the link). */
export type ConnectionCommand = MotionAudioCommand | ConnectionInterruptCommand;

/** What the `connection` actor reports (sendBack). */
export type ConnectionEvent =
  | { readonly type: 'connection.ready'; readonly connectionId: string }
  | {
      readonly type: 'connection.frames';
      readonly conversationId: string;
      readonly frames: readonly Uint8Array[];
      readonly isLast: boolean;
      readonly receivedAt: number;
    }
  | {
      readonly type: 'connection.audio';
      readonly conversationId: string;
      readonly pcm: Int16Array;
      readonly sampleRate: number;
      /** The bytes sent in CLIENT_AUDIO_INPUT: PCM16LE, or the Ogg Opus pages. */
      readonly audio: Uint8Array;
      readonly format: MotionAudioFormat;
      readonly isLast: boolean;
    }
  /** No request outstanding any more. */
  | { readonly type: 'connection.idle' }
  /** The interrupt is on the wire; `streaming` tells whether a newer reply already started. */
  | { readonly type: 'connection.interrupted'; readonly streaming: boolean }
  /** A non-fatal problem (a ServerError for one request, a malformed envelope). */
  | { readonly type: 'connection.warning'; readonly error: Error }
  /** The connection ended or could not be made. */
  | { readonly type: 'connection.lost'; readonly error: Error; readonly retryable: boolean };

export type MotionLinkEvent = MotionLinkCommand | ConnectionEvent;

export type MotionLinkState = 'connecting' | 'ready' | 'streaming' | 'interrupting' | 'reconnecting' | 'failed' | 'closed';

/** What the link sends to its parent (and emits). */
export type MotionLinkOutput =
  | {
      readonly type: 'motion.frames';
      /** The req_id of the reply; the client feed's conversationId. */
      readonly conversationId: string;
      /** Animation envelopes exactly as received. Empty in egress mode (the server publishes). */
      readonly frames: readonly Uint8Array[];
      readonly isLast: boolean;
      /** performance.now() when the envelope was read from the socket (relay latency). */
      readonly receivedAt: number;
    }
  | {
      /** The audio as sent to the Motion Server, for the client feed's avatar.audio. */
      readonly type: 'motion.audio';
      readonly conversationId: string;
      /** The speech at the link's rate (resampled), before any encoding. */
      readonly pcm: Int16Array;
      readonly sampleRate: number;
      /** The bytes as sent: PCM16LE, or with `ogg_opus` the next pages of the request's Ogg stream. */
      readonly audio: Uint8Array;
      readonly format: MotionAudioFormat;
      readonly isLast: boolean;
    }
  | { readonly type: 'motion.interrupted' }
  | { readonly type: 'motion.error'; readonly error: Error; readonly fatal: boolean }
  | { readonly type: 'motion.state'; readonly state: MotionLinkState };

export interface ReconnectPolicy {
  /** First retry delay. Default 250 ms. */
  readonly baseDelayMs: number;
  /** Cap on the delay. Default 8000 ms. */
  readonly maxDelayMs: number;
  /** Consecutive failed attempts before `failed`. Default 6. */
  readonly maxAttempts: number;
}

export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = { baseDelayMs: 250, maxDelayMs: 8000, maxAttempts: 6 };

export interface MotionLinkInput {
  readonly reconnect?: Partial<ReconnectPolicy>;
  /**
   * `false`: only `emit` the outputs (observe them with `actor.on(...)`), never send them to the
   * parent. A session relays avatar frames this way, so they add no work to its statechart.
   */
  readonly notifyParent?: boolean;
}

export interface MotionLinkContext {
  readonly policy: ReconnectPolicy;
  /** Reconnect attempts since the last confirmed connection. */
  readonly attempt: number;
  readonly lastError: Error | undefined;
  readonly notifyParent: boolean;
  /**
   * The conversation id of the reply being sent (the req_id of its first audio), kept across
   * reconnects: after a dropped connection the rest of the reply goes out under a new req_id, and
   * the client must still see one conversation per reply. Cleared at the reply's end or interrupt.
   */
  readonly conversation: string | undefined;
  /** req_ids that continue an earlier one's conversation (after a reconnect) → that conversation id. */
  readonly aliases: Readonly<Record<string, string>>;
}

export interface ConnectionInput {
  /** 0 for the first connection, then 1, 2, ... for reconnects. */
  readonly attempt: number;
}

/** Exponential backoff: base, 2×base, 4×base, ... capped at maxDelayMs. `attempt` starts at 1. */
export function backoffDelay(attempt: number, policy: ReconnectPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
}

export const motionLinkMachine = setup({
  types: {
    context: {} as MotionLinkContext,
    events: {} as MotionLinkEvent,
    input: {} as MotionLinkInput | undefined,
    emitted: {} as MotionLinkOutput,
  },
  actors: {
    // Placeholder: never connects. src/motion/link.ts provides the real one; tests provide fakes.
    connection: fromCallback<ConnectionCommand, ConnectionInput, ConnectionEvent>(() => () => undefined),
  },
  actions: {
    notify: enqueueActions(({ context, enqueue, self }, params: MotionLinkOutput) => {
      const parent: AnyActorRef | undefined = self._parent;
      if (parent !== undefined && context.notifyParent) enqueue.sendParent(params);
      enqueue.emit(params);
    }),
    forward: sendTo('connection', ({ event }) => event as MotionAudioCommand),
    sendClientInterrupt: sendTo('connection', { type: 'connection.interrupt', via: 'client_interrupt' } satisfies ConnectionInterruptCommand),
    endRequest: sendTo('connection', { type: 'connection.interrupt', via: 'end_request' } satisfies ConnectionInterruptCommand),
    resetAttempts: assign({ attempt: 0 }),
    countAttempt: assign({ attempt: ({ context }) => context.attempt + 1 }),
    rememberError: assign({ lastError: (_, params: { error: Error }) => params.error }),
    /** Audio left for the Motion Server: relayed under the reply's conversation id (see MotionLinkContext.conversation). */
    relayAudio: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'connection.audio') return;
      const conversation = context.conversation ?? event.conversationId;
      if (context.conversation === undefined && !event.isLast) enqueue.assign({ conversation: event.conversationId });
      else if (event.isLast) enqueue.assign({ conversation: undefined });
      if (conversation !== event.conversationId && context.aliases[event.conversationId] === undefined) {
        enqueue.assign({ aliases: { ...context.aliases, [event.conversationId]: conversation } });
      }
      const output: MotionLinkOutput = { type: 'motion.audio', conversationId: conversation, pcm: event.pcm, sampleRate: event.sampleRate, audio: event.audio, format: event.format, isLast: event.isLast };
      const parent: AnyActorRef | undefined = self._parent;
      if (parent !== undefined && context.notifyParent) enqueue.sendParent(output);
      enqueue.emit(output);
    }),
    /** Animation: relayed under the conversation its req_id belongs to. */
    relayFrames: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'connection.frames') return;
      const alias = context.aliases[event.conversationId];
      if (alias !== undefined && event.isLast) {
        const { [event.conversationId]: _done, ...rest } = context.aliases;
        enqueue.assign({ aliases: rest });
      }
      const output: MotionLinkOutput = { type: 'motion.frames', conversationId: alias ?? event.conversationId, frames: event.frames, isLast: event.isLast, receivedAt: event.receivedAt };
      const parent: AnyActorRef | undefined = self._parent;
      if (parent !== undefined && context.notifyParent) enqueue.sendParent(output);
      enqueue.emit(output);
    }),
    /** The reply ended or was interrupted where the Motion Server could not hear of it: the next reply is a new conversation. */
    forgetConversation: assign({ conversation: undefined }),
  },
  guards: {
    canReconnect: ({ context }, params: { retryable: boolean }) => params.retryable && context.attempt < context.policy.maxAttempts,
    stillStreaming: (_, params: { streaming: boolean }) => params.streaming,
    // Placeholder: own transport, where the SDK ends the request. src/motion/link.ts provides the
    // rule from `interruptMode` (CLIENT_INTERRUPT in egress mode by default).
    sendsClientInterrupt: (_, _params: undefined) => false,
  },
  delays: {
    reconnectDelay: ({ context }) => backoffDelay(context.attempt, context.policy),
  },
}).createMachine({
  id: 'motionLink',
  context: ({ input }) => ({
    policy: { ...DEFAULT_RECONNECT_POLICY, ...input?.reconnect },
    notifyParent: input?.notifyParent ?? true,
    attempt: 0,
    lastError: undefined,
    conversation: undefined,
    aliases: {},
  }),
  initial: 'live',
  on: {
    'motion.close': '.closed',
  },
  states: {
    live: {
      invoke: {
        id: 'connection',
        src: 'connection',
        input: ({ context }) => ({ attempt: context.attempt }),
      },
      initial: 'connecting',
      on: {
        'connection.lost': [
          {
            guard: { type: 'canReconnect', params: ({ event }) => ({ retryable: event.retryable }) },
            target: 'reconnecting',
            actions: [
              { type: 'rememberError', params: ({ event }) => ({ error: event.error }) },
              { type: 'notify', params: ({ event }) => ({ type: 'motion.error', error: event.error, fatal: false }) },
            ],
          },
          {
            target: 'failed',
            actions: [
              { type: 'rememberError', params: ({ event }) => ({ error: event.error }) },
              { type: 'notify', params: ({ event }) => ({ type: 'motion.error', error: event.error, fatal: true }) },
            ],
          },
        ],
        'connection.warning': {
          actions: { type: 'notify', params: ({ event }) => ({ type: 'motion.error', error: event.error, fatal: false }) },
        },
        'connection.frames': { actions: 'relayFrames' },
        'connection.audio': { actions: 'relayAudio' },
      },
      states: {
        connecting: {
          entry: { type: 'notify', params: { type: 'motion.state', state: 'connecting' } },
          on: {
            'connection.ready': { target: 'ready', actions: 'resetAttempts' },
            // Nothing to interrupt yet; answer at once so the caller never waits on us.
            'motion.interrupt': { actions: ['forgetConversation', { type: 'notify', params: { type: 'motion.interrupted' } }] },
          },
        },
        ready: {
          entry: { type: 'notify', params: { type: 'motion.state', state: 'ready' } },
          on: {
            'motion.audio': { target: 'streaming', actions: 'forward' },
            'motion.interrupt': { actions: ['forgetConversation', { type: 'notify', params: { type: 'motion.interrupted' } }] },
          },
        },
        streaming: {
          entry: { type: 'notify', params: { type: 'motion.state', state: 'streaming' } },
          on: {
            'motion.audio': { actions: 'forward' },
            'connection.idle': { target: 'ready' },
            'motion.interrupt': [
              { guard: 'sendsClientInterrupt', target: 'interrupting', actions: ['forgetConversation', 'sendClientInterrupt'] },
              { target: 'interrupting', actions: ['forgetConversation', 'endRequest'] },
            ],
          },
        },
        interrupting: {
          entry: { type: 'notify', params: { type: 'motion.state', state: 'interrupting' } },
          on: {
            // A new reply may start before the interrupt is acknowledged: it gets a new req_id.
            'motion.audio': { actions: 'forward' },
            'connection.interrupted': [
              {
                guard: { type: 'stillStreaming', params: ({ event }) => ({ streaming: event.streaming }) },
                target: 'streaming',
                actions: { type: 'notify', params: { type: 'motion.interrupted' } },
              },
              { target: 'ready', actions: { type: 'notify', params: { type: 'motion.interrupted' } } },
            ],
          },
        },
      },
    },
    reconnecting: {
      entry: ['countAttempt', { type: 'notify', params: { type: 'motion.state', state: 'reconnecting' } }],
      on: {
        // Audio cannot be sent while the link is down; a reply that ends meanwhile ends its conversation.
        'motion.audio': { guard: ({ event }) => event.end, actions: 'forgetConversation' },
        'motion.interrupt': { actions: ['forgetConversation', { type: 'notify', params: { type: 'motion.interrupted' } }] },
      },
      after: {
        reconnectDelay: { target: 'live' },
      },
    },
    failed: {
      entry: { type: 'notify', params: { type: 'motion.state', state: 'failed' } },
      on: {
        'motion.interrupt': { actions: ['forgetConversation', { type: 'notify', params: { type: 'motion.interrupted' } }] },
      },
    },
    closed: {
      type: 'final',
      entry: { type: 'notify', params: { type: 'motion.state', state: 'closed' } },
    },
  },
});

export type MotionLinkMachine = typeof motionLinkMachine;
