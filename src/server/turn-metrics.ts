/**
 * Turn metrics: timings of each reply, from the session's events and the moment its first audio
 * frame reached the transport. One tracker per session; it only observes (no I/O of its own).
 *
 *   speechEndToFirstAudioMs  vad.speechEnd → first agent audio frame on the transport (voice turns)
 *   sttMs                    vad.speechEnd → transcript.final (voice turns)
 *   llmFirstTokenMs          turn.start → first reply.delta
 *   ttsFirstAudioMs          first reply.delta → first agent audio frame on the transport
 *
 * A turn ends at its reply.done (finished or interrupted): that is when the metrics are reported.
 */
import type { SessionEmitted } from '../../machines/session-types.js';
import type { ServerMessageOf } from '../protocol/messages.js';
import type { TurnMetrics } from './hooks.js';

interface TurnClock {
  readonly id: number;
  readonly source: 'voice' | 'text';
  readonly speechEndAt: number | undefined;
  readonly finalAt: number | undefined;
  readonly startAt: number;
  firstDeltaAt: number | undefined;
  firstFrameAt: number | undefined;
}

export class TurnMetricsTracker {
  readonly #sessionId: string;
  readonly #now: () => number;
  #turn: TurnClock | undefined;
  /** When the user's last utterance ended, and when its final transcript came (not yet a turn). */
  #speechEndAt: number | undefined;
  #finalAt: number | undefined;

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
      case 'vad.speechEnd':
        this.#speechEndAt = this.#now();
        // A final transcript belongs to the utterance that ended before it.
        this.#finalAt = undefined;
        return undefined;
      case 'transcript.final':
        if (this.#speechEndAt !== undefined) this.#finalAt = this.#now();
        return undefined;
      case 'turn.start': {
        const voice = event.source === 'voice';
        this.#turn = {
          id: event.replyId,
          source: event.source,
          speechEndAt: voice ? this.#speechEndAt : undefined,
          finalAt: voice ? this.#finalAt : undefined,
          startAt: this.#now(),
          firstDeltaAt: undefined,
          firstFrameAt: undefined,
        };
        this.#speechEndAt = undefined;
        this.#finalAt = undefined;
        return undefined;
      }
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

  #end(replyId: number, interrupted: boolean): TurnMetrics | undefined {
    const turn = this.#turn;
    if (turn === undefined || turn.id !== replyId) return undefined;
    this.#turn = undefined;
    return {
      sessionId: this.#sessionId,
      turnId: String(replyId),
      source: turn.source,
      interrupted,
      ...(turn.speechEndAt !== undefined && turn.firstFrameAt !== undefined ? { speechEndToFirstAudioMs: turn.firstFrameAt - turn.speechEndAt } : {}),
      ...(turn.speechEndAt !== undefined && turn.finalAt !== undefined ? { sttMs: turn.finalAt - turn.speechEndAt } : {}),
      ...(turn.firstDeltaAt !== undefined ? { llmFirstTokenMs: turn.firstDeltaAt - turn.startAt } : {}),
      ...(turn.firstDeltaAt !== undefined && turn.firstFrameAt !== undefined ? { ttsFirstAudioMs: turn.firstFrameAt - turn.firstDeltaAt } : {}),
    };
  }
}

/** The `metrics.turn` wire message of a turn (the hook's fields without session, source and outcome). */
export function metricsTurnMessage(metrics: TurnMetrics): ServerMessageOf<'metrics.turn'> {
  const { sessionId: _sessionId, source: _source, interrupted: _interrupted, ...timings } = metrics;
  return { type: 'metrics.turn', ...timings };
}
