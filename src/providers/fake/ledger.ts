/**
 * Records every provider call a fake makes, so tests can check that each one ended (completed,
 * failed or aborted) — the "no leaked provider work" invariant.
 */
export type CallKind = 'stt' | 'llm' | 'tts';
export type CallOutcome = 'completed' | 'failed' | 'aborted';

export interface CallRecord {
  readonly id: number;
  readonly kind: CallKind;
  readonly startedAt: number;
  endedAt: number | undefined;
  outcome: CallOutcome | undefined;
}

export class CallLedger {
  readonly calls: CallRecord[] = [];
  #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  begin(kind: CallKind): CallRecord {
    const record: CallRecord = { id: this.calls.length + 1, kind, startedAt: this.#now(), endedAt: undefined, outcome: undefined };
    this.calls.push(record);
    return record;
  }

  end(record: CallRecord, outcome: CallOutcome): void {
    if (record.outcome !== undefined) return;
    record.outcome = outcome;
    record.endedAt = this.#now();
  }

  open(): CallRecord[] {
    return this.calls.filter((call) => call.outcome === undefined);
  }

  count(kind?: CallKind, outcome?: CallOutcome): number {
    return this.calls.filter((c) => (kind === undefined || c.kind === kind) && (outcome === undefined || c.outcome === outcome)).length;
  }
}
