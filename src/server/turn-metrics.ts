/**
 * Turn metrics: timings of each reply, from the session's events and the moment its first audio
 * frame reached the transport. One tracker per session; it only observes (no I/O of its own).
 * Voice turns (docs/protocol.md, `metrics.turn`):
 *
 *   userStoppedToFirstAudioMs  audio edge (end of the user's last voiced window) → first agent audio frame
 *   endpointingMs              audio edge → end-of-turn decision (turn.endpoint)
 *   speechEndToFirstAudioMs    end-of-turn decision → first agent audio frame
 *   sttFinalLagMs              audio edge → transcript.final
 *   preemptive                 used | discarded | off
 * All turns:
 *   llmFirstTokenMs            turn.start → first reply.delta
 *   ttsFirstAudioMs            first reply.delta → first agent audio frame
 *
 * The audio edge is placed in wall time from the decision: audio arrives in real time, so the edge
 * was heard `endpointingMs` before the decision.
 *
 * A turn ends at its reply.done (finished or interrupted): that is when the metrics are reported.
 */
import type { SessionEmitted } from '../../machines/session-types.js';
import type { ServerMessageOf } from '../protocol/messages.js';
import type { TurnMetrics } from './hooks.js';

interface UserTurn {
  readonly edgeAt: number;
  readonly decidedAt: number;
  readonly endpointingMs: number;
}

interface TurnClock {
  readonly id: number;
  readonly source: 'voice' | 'text' | 'idle' | 'stage';
  readonly user: UserTurn | undefined;
  readonly finalAt: number | undefined;
  preemptive: 'used' | 'discarded' | 'off';
  readonly startAt: number;
  firstDeltaAt: number | undefined;
  firstFrameAt: number | undefined;
}

export class TurnMetricsTracker {
  readonly #sessionId: string;
  readonly #now: () => number;
  #turn: TurnClock | undefined;
  /** The user's last end-of-turn decision and final transcript not yet answered; speculation seen meanwhile. */
  #user: UserTurn | undefined;
  #finalAt: number | undefined;
  #discarded = false;

  constructor(options: { readonly sessionId: string; readonly now: () => number }) {
    this.#sessionId = options.sessionId;
    this.#now = options.now;
  }

  /** An agent audio frame of reply `replyId` was handed to the transport. */
  frame(replyId: number): void {
    const turn = this.#turn;
    if (turn !== undefined && turn.id === replyId && turn.firstFrameAt === undefined) turn.firstFrameAt = this.#now();
  }

  /** Observes one session event; returns the metrics of the turn its `reply.done` ended. */
  observe(event: SessionEmitted): TurnMetrics | undefined {
    switch (event.type) {
      case 'turn.endpoint': {
        const now = this.#now();
        this.#user = { edgeAt: now - event.endpointingMs, decidedAt: now, endpointingMs: event.endpointingMs };
        return undefined;
      }
      case 'transcript.final':
        this.#finalAt = this.#now();
        return undefined;
      case 'reply.preemptive':
        if (event.outcome === 'discarded') this.#discarded = true;
        // A committed speculation: its turn.start came just before.
        if (event.outcome === 'used' && this.#turn?.id === event.replyId) this.#turn.preemptive = 'used';
        return undefined;
      case 'turn.start':
        this.#turnStart(event.replyId, event.source, this.#discarded ? 'discarded' : 'off');
        return undefined;
      case 'reply.delta': {
        const turn = this.#turn;
        if (turn !== undefined && turn.id === event.replyId && turn.firstDeltaAt === undefined) turn.firstDeltaAt = this.#now();
        return undefined;
      }
      case 'reply.done':
        return this.#end(event.replyId, event.interrupted);
      default:
        return undefined;
    }
  }

  #turnStart(id: number, source: 'voice' | 'text' | 'idle' | 'stage', preemptive: 'used' | 'discarded' | 'off'): void {
    const voice = source === 'voice';
    this.#turn = {
      id,
      source,
      user: voice ? this.#user : undefined,
      finalAt: voice ? this.#finalAt : undefined,
      preemptive,
      startAt: this.#now(),
      firstDeltaAt: undefined,
      firstFrameAt: undefined,
    };
    this.#user = undefined;
    this.#finalAt = undefined;
    this.#discarded = false;
  }

  #end(replyId: number, interrupted: boolean): TurnMetrics | undefined {
    const turn = this.#turn;
    if (turn === undefined || turn.id !== replyId) return undefined;
    this.#turn = undefined;
    const user = turn.user;
    const frame = turn.firstFrameAt;
    return {
      sessionId: this.#sessionId,
      turnId: String(replyId),
      source: turn.source,
      interrupted,
      ...(user !== undefined && frame !== undefined
        ? { userStoppedToFirstAudioMs: Math.max(0, frame - user.edgeAt), speechEndToFirstAudioMs: Math.max(0, frame - user.decidedAt) }
        : {}),
      ...(user !== undefined ? { endpointingMs: user.endpointingMs } : {}),
      ...(user !== undefined && turn.finalAt !== undefined ? { sttFinalLagMs: Math.max(0, turn.finalAt - user.edgeAt) } : {}),
      // A committed speculation ran its LLM and TTS before the turn started: no such timings.
      ...(turn.preemptive !== 'used' && turn.firstDeltaAt !== undefined ? { llmFirstTokenMs: turn.firstDeltaAt - turn.startAt } : {}),
      ...(turn.preemptive !== 'used' && turn.firstDeltaAt !== undefined && frame !== undefined ? { ttsFirstAudioMs: Math.max(0, frame - turn.firstDeltaAt) } : {}),
      ...(turn.source === 'voice' ? { preemptive: turn.preemptive } : {}),
    };
  }
}

/** The `metrics.turn` wire message of a turn (the hook's fields without session, source and outcome). */
export function metricsTurnMessage(metrics: TurnMetrics): ServerMessageOf<'metrics.turn'> {
  const { sessionId: _sessionId, source: _source, interrupted: _interrupted, ...timings } = metrics;
  return { type: 'metrics.turn', ...timings };
}
