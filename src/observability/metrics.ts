/**
 * Prometheus metrics (prom-client). The series names and labels are a contract, listed in
 * docs/observability.md; a test scrapes /metrics and checks every one of them.
 *
 * One Metrics object per Registry: `createMetrics()` makes a fresh registry (so two servers in one
 * process never clash), `createMetrics({ registry })` returns the same object for the same
 * registry (servers that share a registry add up into the same series). The process metrics of
 * prom-client (`process_cpu_seconds_total`, …) are created once per process and registered into
 * every registry that lacks them, so each new server adds no observers of its own.
 *
 * Labelled series are set to 0 for their known labels at creation (prom-client prints nothing for
 * a label set never touched), so a scraper sees every series from the start.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import type { SessionEmitted } from '../../machines/session-types.js';
import type { ErrorCode } from '../errors.js';
import type { Providers } from '../providers/types.js';
import { firstResultMs, type ProviderCall, type ProviderKind } from './instrument.js';

export type TurnSource = 'voice' | 'text' | 'idle' | 'stage';
export const TURN_SOURCES: readonly TurnSource[] = ['voice', 'text', 'idle', 'stage'];
export const INTERRUPTION_KINDS = ['confirmed', 'false'] as const;
/** The provider error codes every configured provider is exported with from start-up (aborts are not errors). */
export const PROVIDER_ERROR_CODES: readonly ErrorCode[] = [
  'provider_failed',
  'provider_timeout',
  'provider_rate_limited',
  'provider_auth',
  'provider_bad_response',
  'provider_unavailable',
];
/** The `event` label of `voxstate_webrtc_inbound_total`. */
export const WEBRTC_INBOUND_EVENTS = ['lost', 'late', 'reordered', 'concealed'] as const;

/** What a WebRTC transport's stats say about its inbound audio (the fields of WebRtcStats counted here). */
export interface InboundAudioSource {
  readonly stats: { readonly packetsLost: number; readonly packetsLate: number; readonly packetsReordered: number; readonly concealedFrames: number };
}

/** Quantiles of `voxstate_event_loop_delay_seconds`; 1 is the largest delay. */
export const EVENT_LOOP_QUANTILES = [0.5, 0.9, 0.99, 1] as const;

/** The event-loop monitor's sampling period. Node records whole periods, so the delay is what exceeds it. */
const EVENT_LOOP_RESOLUTION_MS = 10;

const LATENCY_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
const VAD_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Waits for a provider slot: from none (a free slot) to the default queue timeout (15 s). */
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];
const VAD_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** What a VAD offers to be watched: src/vad/shared-vad.ts `SharedVad.observeBatches`. */
export interface BatchSource {
  observeBatches(observer: (windows: number, seconds: number) => void): () => void;
}

export interface MetricsOptions {
  /** Where the series are registered. Default: a new Registry of this Metrics' own. */
  readonly registry?: Registry;
}

let processMetrics: Registry | undefined;

/** prom-client's default process metrics, created once for the whole process. */
function defaultProcessMetrics(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
  }
  return processMetrics;
}

const byRegistry = new WeakMap<Registry, Metrics>();

/** The Metrics of `options.registry` (made on first use), or of a new registry. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = options.registry;
  if (registry === undefined) return new Metrics(new Registry());
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new Metrics(registry);
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

export class Metrics {
  readonly registry: Registry;
  readonly #sessionsActive: Gauge;
  readonly #sessionsTotal: Counter;
  readonly #turns: Counter<'source'>;
  readonly #interruptions: Counter<'kind'>;
  readonly #turnLatency: Histogram;
  readonly #providerLatency: Histogram<'provider' | 'kind'>;
  readonly #providerErrors: Counter<'provider' | 'code'>;
  readonly #providerQueue: Histogram<'provider' | 'kind'>;
  readonly #vadSeconds: Histogram;
  readonly #vadBatch: Histogram;
  #loop: IntervalHistogram | undefined;
  #attached = 0;
  /** VADs watched, each once however many servers attach it. */
  readonly #vads = new Map<BatchSource, { count: number; stop: () => void }>();
  readonly #webrtcInbound: Counter<'event'>;
  /** Live WebRTC transports and what of their stats is already counted (lost, late, reordered, concealed). */
  readonly #webrtcSources = new Map<InboundAudioSource, number[]>();

  /** Use {@link createMetrics}. */
  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    this.#sessionsActive = new Gauge({ name: 'voxstate_sessions_active', help: 'Live sessions (connected or waiting for a resume).', registers });
    this.#sessionsTotal = new Counter({ name: 'voxstate_sessions_total', help: 'Sessions started (new, or restored from the session store).', registers });
    this.#turns = new Counter({ name: 'voxstate_turns_total', help: 'Replies started, by what started them.', labelNames: ['source'], registers });
    this.#interruptions = new Counter({
      name: 'voxstate_interruptions_total',
      help: 'Interruptions of a reply: confirmed (the reply was cut) or false (it went on).',
      labelNames: ['kind'],
      registers,
    });
    this.#turnLatency = new Histogram({
      name: 'voxstate_turn_latency_seconds',
      help: "Voice turns: end of the user's last voiced audio → first agent audio frame on the transport.",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#providerLatency = new Histogram({
      name: 'voxstate_provider_latency_seconds',
      help: 'Provider call → its first result (stt: final transcript, llm: first token, tts: first audio).',
      labelNames: ['provider', 'kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#providerErrors = new Counter({
      name: 'voxstate_provider_errors_total',
      help: 'Provider calls that failed (aborted calls are not counted), by error code.',
      labelNames: ['provider', 'code'],
      registers,
    });
    this.#providerQueue = new Histogram({
      name: 'voxstate_provider_queue_seconds',
      help: 'Time a provider call of a limited kind (providers.limits) waited for a free slot, until it got one or timed out.',
      labelNames: ['provider', 'kind'],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.#vadSeconds = new Histogram({ name: 'voxstate_vad_inference_seconds', help: 'Time of one batched VAD inference.', buckets: VAD_SECONDS_BUCKETS, registers });
    this.#vadBatch = new Histogram({ name: 'voxstate_vad_batch_size', help: 'Windows scored by one batched VAD inference.', buckets: VAD_BATCH_BUCKETS, registers });
    const collectWebRtc = (): void => {
      for (const [source, counted] of this.#webrtcSources) this.#countWebRtc(source, counted);
    };
    this.#webrtcInbound = new Counter({
      name: 'voxstate_webrtc_inbound_total',
      help: 'Caller audio over WebRTC, all sessions: RTP packets lost (never came), late (came after their slot, dropped), reordered (put back in order), and 20 ms frames concealed.',
      labelNames: ['event'],
      registers,
      collect() {
        collectWebRtc();
      },
    });
    for (const event of WEBRTC_INBOUND_EVENTS) this.#webrtcInbound.labels(event).inc(0);
    const collectLoopDelay = (gauge: Gauge<'quantile'>): void => this.#collectLoopDelay(gauge);
    new Gauge({
      name: 'voxstate_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape, by quantile (1 = the largest).',
      labelNames: ['quantile'],
      registers,
      collect() {
        collectLoopDelay(this);
      },
    });
    for (const source of TURN_SOURCES) this.#turns.labels(source).inc(0);
    for (const kind of INTERRUPTION_KINDS) this.#interruptions.labels(kind).inc(0);
    // The same metric objects, registered here too (prom-client types them as plain MetricObjects).
    for (const metric of defaultProcessMetrics().getMetricsAsArray()) {
      if (registry.getSingleMetric(metric.name) === undefined) registry.registerMetric(metric as unknown as Metric);
    }
  }

  /** The Content-Type of `scrape()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every series of the registry in the Prometheus text format. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Counts a WebRTC transport's inbound losses, late and reordered packets and concealed frames into
   * `voxstate_webrtc_inbound_total` (read at each scrape, so nothing is added per packet). The returned
   * function counts what is left and stops: call it when the transport closes.
   */
  trackWebRtc(source: InboundAudioSource): () => void {
    const counted = [0, 0, 0, 0];
    this.#webrtcSources.set(source, counted);
    return () => {
      if (!this.#webrtcSources.delete(source)) return;
      this.#countWebRtc(source, counted);
    };
  }

  #countWebRtc(source: InboundAudioSource, counted: number[]): void {
    const { packetsLost, packetsLate, packetsReordered, concealedFrames } = source.stats;
    const now = [packetsLost, packetsLate, packetsReordered, concealedFrames];
    for (let i = 0; i < now.length; i++) {
      const added = (now[i] ?? 0) - (counted[i] ?? 0);
      if (added > 0) {
        this.#webrtcInbound.labels(WEBRTC_INBOUND_EVENTS[i] as (typeof WEBRTC_INBOUND_EVENTS)[number]).inc(added);
        counted[i] = now[i] ?? 0;
      }
    }
  }

  /** Exports the provider series at 0 for these providers (their names and kinds, each error code). */
  knownProviders(providers: Providers): void {
    for (const kind of ['stt', 'llm', 'tts'] as const) {
      const provider = providers[kind].name;
      this.#providerLatency.zero({ provider, kind });
      this.#providerQueue.zero({ provider, kind });
      for (const code of PROVIDER_ERROR_CODES) this.#providerErrors.labels(provider, code).inc(0);
    }
  }

  /**
   * Starts what runs in the background while a server uses these metrics: the event-loop monitor,
   * and the VAD's per-batch observer. The returned function undoes it (the last one stops them).
   */
  attach(vad?: BatchSource): () => void {
    this.#attached++;
    if (this.#loop === undefined) {
      this.#loop = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
      this.#loop.enable();
    }
    if (vad !== undefined) {
      const watched = this.#vads.get(vad);
      if (watched !== undefined) watched.count++;
      else this.#vads.set(vad, { count: 1, stop: vad.observeBatches((windows, seconds) => this.vadBatch(windows, seconds)) });
    }
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      if (vad !== undefined) {
        const watched = this.#vads.get(vad);
        if (watched !== undefined && --watched.count === 0) {
          watched.stop();
          this.#vads.delete(vad);
        }
      }
      if (--this.#attached === 0) {
        this.#loop?.disable();
        this.#loop = undefined;
      }
    };
  }

  sessionStarted(): void {
    this.#sessionsActive.inc();
    this.#sessionsTotal.inc();
  }

  sessionEnded(): void {
    this.#sessionsActive.dec();
  }

  /** Counts what a session event tells: a turn started, an interruption was confirmed or false. */
  sessionEvent(event: SessionEmitted): void {
    switch (event.type) {
      case 'turn.start':
        this.#turns.labels(event.source).inc();
        break;
      case 'interruption.confirmed':
        this.#interruptions.labels('confirmed').inc();
        break;
      case 'interruption.false':
        this.#interruptions.labels('false').inc();
        break;
      default:
        break;
    }
  }

  /** A voice turn's audio edge → first agent audio, in ms (turn-metrics.ts `userStoppedToFirstAudioMs`). */
  turnLatency(ms: number): void {
    this.#turnLatency.observe(ms / 1000);
  }

  /** An ended provider call: its first-result latency, or its error. */
  providerCall(call: ProviderCall): void {
    const latency = firstResultMs(call);
    if (latency !== undefined) this.#providerLatency.observe({ provider: call.provider, kind: call.kind satisfies ProviderKind }, latency / 1000);
    if (call.outcome === 'failed') this.#providerErrors.labels(call.provider, call.errorCode ?? 'provider_failed').inc();
  }

  /** A call's wait for a provider slot (src/providers/limits.ts). */
  providerQueued(kind: ProviderKind, provider: string, seconds: number): void {
    this.#providerQueue.observe({ provider, kind }, seconds);
  }

  vadBatch(windows: number, seconds: number): void {
    this.#vadBatch.observe(windows);
    this.#vadSeconds.observe(seconds);
  }

  #collectLoopDelay(gauge: Gauge<'quantile'>): void {
    const loop = this.#loop;
    const delay = (ns: number): number => Math.max(0, ns / 1e6 - EVENT_LOOP_RESOLUTION_MS) / 1000;
    for (const quantile of EVENT_LOOP_QUANTILES) {
      const value = loop === undefined || loop.count === 0 ? 0 : delay(quantile === 1 ? loop.max : loop.percentile(quantile * 100));
      gauge.labels(String(quantile)).set(value);
    }
    loop?.reset();
  }
}
