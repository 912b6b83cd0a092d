/**
 * Fault injection for the local Motion Server: the plan a test sets with `setFaults`, and how many
 * more times each counted fault applies.
 */

export interface MotionFaults {
  /** Refuse upgrades with this HTTP status (401 expired, 400 invalid, 404 app/avatar, 402 billing, ...). */
  readonly refuseUpgrade?: { readonly status: number; readonly body?: string; readonly times?: number };
  /** Close each connection with `code` once it has sent `frames` animation messages (0: right after confirm). */
  readonly closeAfterFrames?: { readonly frames: number; readonly code: number; readonly reason?: string; readonly times?: number };
  /** Destroy the TCP connection, without a close frame, after `frames` animation messages. */
  readonly dropAfterFrames?: { readonly frames: number; readonly times?: number };
  /** Answer configure with a SERVER_ERROR of this code instead of a confirm. */
  readonly rejectConfigure?: { readonly code: number; readonly message?: string; readonly times?: number };
  /** Confirm with an empty connection_id (a protocol error clients must catch). */
  readonly emptyConnectionId?: boolean;
  /** Hold the confirm this long. */
  readonly confirmDelayMs?: number;
  /** Hold every animation message this long. */
  readonly frameDelayMs?: number;
  /** The token endpoint answers with this status. */
  readonly tokenStatus?: number;
}

/** Faults that apply a limited number of `times`. */
export type CountedFault = 'refuseUpgrade' | 'closeAfterFrames' | 'dropAfterFrames' | 'rejectConfigure';

/** The current fault plan, shared by the token endpoint, the upgrade check and the sessions. */
export class FaultPlan {
  #faults: MotionFaults = {};
  /** Remaining applications of each counted fault (Infinity when `times` is not given). */
  readonly #remaining = new Map<keyof MotionFaults, number>();

  /** The plan as set (uncounted faults are read from here). */
  get current(): MotionFaults {
    return this.#faults;
  }

  /** Replaces the fault plan (applies to requests and connections from now on). */
  set(faults: MotionFaults): void {
    this.#faults = { ...faults };
    this.#remaining.clear();
    for (const key of ['refuseUpgrade', 'closeAfterFrames', 'dropAfterFrames', 'rejectConfigure'] as const) {
      const fault = faults[key];
      if (fault !== undefined) this.#remaining.set(key, fault.times ?? Number.POSITIVE_INFINITY);
    }
  }

  /** Consumes one application of a counted fault. */
  take<K extends CountedFault>(key: K): MotionFaults[K] | undefined {
    const fault = this.#faults[key];
    const left = this.#remaining.get(key) ?? 0;
    if (fault === undefined || left <= 0) return undefined;
    this.#remaining.set(key, left - 1);
    return fault;
  }
}
