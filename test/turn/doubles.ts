/**
 * A test double for the end-of-turn contract: answers scripted probabilities and records what it
 * was asked. Reused by the session tests.
 */
import type { TurnDetector, TurnDetectorInput } from '../../src/turn/detector.js';

/** What the detector was given, copied at the call (the session may reuse its audio buffer). */
export interface RecordedTurnInput extends TurnDetectorInput {
  /** 0 for the first call. */
  readonly index: number;
}

export type TurnScript =
  | readonly number[]
  | ((input: TurnDetectorInput, index: number) => number | Promise<number>);

export interface ScriptedTurnDetectorOptions {
  readonly name?: string;
  /**
   * Answer after this many ms (a `setTimeout`, so fake timers drive it) instead of synchronously.
   * An abort of the input's signal meanwhile rejects with the signal's reason.
   */
  readonly delayMs?: number;
}

export interface ScriptedTurnDetector extends TurnDetector {
  /** Every call so far, oldest first. */
  readonly calls: readonly RecordedTurnInput[];
}

/**
 * `script` as an array: call i answers `script[i]`, and calls beyond the end repeat the last value
 * (assert on `calls.length` to pin the count). As a function: called with the input and the call's
 * index; it may throw or reject to play a failing model.
 */
export function scriptedTurnDetector(
  script: TurnScript,
  options: ScriptedTurnDetectorOptions = {},
): ScriptedTurnDetector {
  if (typeof script !== 'function' && script.length === 0) {
    throw new Error('scriptedTurnDetector: the script needs at least one probability');
  }
  const calls: RecordedTurnInput[] = [];
  const answer = (input: TurnDetectorInput, index: number): number | Promise<number> =>
    typeof script === 'function' ? script(input, index) : (script[Math.min(index, script.length - 1)] as number);

  return {
    name: options.name ?? 'scripted',
    calls,
    endOfTurnProbability(input: TurnDetectorInput): number | Promise<number> {
      const index = calls.length;
      calls.push({
        index,
        text: input.text,
        audio: { samples: input.audio.samples.slice(), sampleRate: input.audio.sampleRate },
        history: [...input.history],
        signal: input.signal,
      });
      const { delayMs } = options;
      if (delayMs === undefined) return answer(input, index);
      return new Promise<number>((resolve, reject) => {
        const { signal } = input;
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          Promise.resolve()
            .then(() => answer(input, index))
            .then(resolve, reject);
        }, delayMs);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

/** A detector input with defaults: no text, 100 ms of silence, no history, a live signal. */
export function turnInput(overrides: Partial<TurnDetectorInput> = {}): TurnDetectorInput {
  return {
    text: '',
    audio: { samples: new Float32Array(1600), sampleRate: 16000 },
    history: [],
    signal: new AbortController().signal,
    ...overrides,
  };
}
