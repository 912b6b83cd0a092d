/**
 * What a benchmark server reports about its own process since the last reset: CPU, memory and
 * event-loop lag (how long a due callback — an inbound frame, a playout tick — waited).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ProcessFigures {
  /** One core fully busy = 100. */
  readonly cpuPercent: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export class ProcessMeter {
  static readonly #RESOLUTION_MS = 1;
  readonly #loop = monitorEventLoopDelay({ resolution: ProcessMeter.#RESOLUTION_MS });
  #cpu = process.cpuUsage();
  #at = performance.now();

  constructor() {
    this.#loop.enable();
  }

  reset(): void {
    this.#loop.reset();
    this.#cpu = process.cpuUsage();
    this.#at = performance.now();
  }

  figures(): ProcessFigures {
    const used = process.cpuUsage(this.#cpu);
    const memory = process.memoryUsage();
    // The histogram measures whole timer periods; the lag is what exceeds the period.
    const lag = (ns: number): number => Math.max(0, ns / 1e6 - ProcessMeter.#RESOLUTION_MS);
    return {
      cpuPercent: ((used.user + used.system) / 1000 / (performance.now() - this.#at)) * 100,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      loopDelayMs: { p50: lag(this.#loop.percentile(50)), p99: lag(this.#loop.percentile(99)), max: lag(this.#loop.max) },
    };
  }
}
