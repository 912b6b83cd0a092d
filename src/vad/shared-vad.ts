/**
 * One Silero model for the whole process, shared by every stream, with cross-stream batching.
 *
 * Each stream keeps its own LSTM state ([2, 1, 128]) and 64-sample context. Windows pushed by any
 * stream are queued; a flush — scheduled with `setImmediate` (same turn of the event loop) or after
 * `batchWindowMs` — takes the oldest queued window of every waiting stream and scores them in ONE
 * inference. While a batch runs, new windows queue up and go into the next batch, so under load the
 * batch grows by itself. A stream's windows are always scored in order: one per batch, or, for streams
 * that fell behind (a busy event loop between batches), all their queued windows in one catch-up call
 * (VadModel.runSteps: step s scores every stream's window s, continuing the state of step s − 1), so a
 * backlog is gone after one batch instead of growing by every batch that comes later than 32 ms.
 * The model the SharedVad loads itself computes on the main thread unless `thread: 'worker'` is
 * given (src/vad/worker-model.ts: a batch then never blocks the event loop, and a process with an idle
 * worker still ends by itself). Not the default: on the shared 2-core machine bench/sessions ran on,
 * the worker scored windows sooner under load (VAD lag p50 ≈ 110 ms instead of 170–1000 ms at 200
 * sessions) but did not make the main thread less busy (≈ 85–90 % either way: the per-batch
 * postMessage and the second busy thread cost about what the inference did).
 *
 * Failure isolation: if a batch throws, each of its windows is retried alone; a stream whose window
 * still fails (or whose output is not finite) gets a `vad_inference_failed` error, its state and
 * context are reset, and the other streams get their normal results.
 */
import { AudioFormatError, VadError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { silentLogger } from '../observability/logger.js';
import {
  loadSileroModel,
  SILERO_CONTEXT,
  SILERO_INPUT,
  SILERO_STATE,
  SILERO_WINDOW,
  type LoadModelOptions,
  type VadModel,
} from './model.js';
import { WindowQueue } from './window-queue.js';

/** Called once per pushed window, in push order. `window` is valid only during the call. */
export type VadResultCallback = (error: VadError | undefined, probability: number, window: Float32Array) => void;

/**
 * Told after each batched inference that succeeded: how many windows it scored and how long the model
 * took, in seconds (metrics: src/observability/metrics.ts). Called on the VAD's loop; keep it cheap.
 */
export type VadBatchObserver = (windows: number, seconds: number) => void;

/** `batchWindowMs: 'auto'`: from this many open streams on, wait this long to fill batches. */
export const AUTO_BATCH = { fromStreams: 16, waitMs: 10 } as const;

/** Most windows of one stream a catch-up batch scores (≈ 0.5 s of audio; see SharedVad #runSteps). */
const MAX_CATCH_UP_STEPS = 16;

export interface SharedVadOptions extends LoadModelOptions {
  /** A ready model, or a factory called once on first use. Default: load Silero v5 with ORT. */
  readonly model?: VadModel | (() => Promise<VadModel>);
  /**
   * How long a window waits for other streams' windows before a batch runs. A number is used as it is
   * (0 = the same event-loop turn). `'auto'` (default) runs at once while fewer than 16 streams are
   * open (latency first, CPU is plentiful) and waits up to 10 ms beyond that: live streams deliver
   * their windows spread over each 32 ms, and waiting gathers them into batches several times larger,
   * which costs far less CPU per window (bench/vad.ts prints both).
   */
  readonly batchWindowMs?: number | 'auto';
  /** Most windows per inference. Default 1024. */
  readonly maxBatchSize?: number;
  /** Most windows a single stream may have queued; older ones beyond it fail with an error. Default 1024 (≈ 33 s of audio). */
  readonly maxQueuePerStream?: number;
  readonly logger?: Logger;
}

export interface SharedVadStats {
  readonly streams: number;
  readonly batches: number;
  readonly windows: number;
  readonly largestBatch: number;
  readonly failedBatches: number;
}

/** One stream's handle on the shared model. */
export class VadInferenceStream {
  readonly #owner: SharedVad;
  /** @internal [h(128), c(128)] */
  readonly state = new Float32Array(2 * SILERO_STATE);
  /** @internal view of `state`: h */
  readonly h = this.state.subarray(0, SILERO_STATE);
  /** @internal view of `state`: c */
  readonly c = this.state.subarray(SILERO_STATE);
  /** @internal the previous window's last 64 samples */
  readonly context = new Float32Array(SILERO_CONTEXT);
  /** @internal windows waiting to be scored, oldest first (the head may be in the running batch) */
  readonly queue = new WindowQueue<VadError>();
  /** @internal true while listed as waiting for a batch */
  waiting = false;
  /** @internal how many of its oldest windows are in the running batch (0: none) */
  inFlight = 0;
  #closed = false;

  /** @internal use {@link SharedVad.openStream} */
  constructor(owner: SharedVad) {
    this.#owner = owner;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Windows queued or being scored. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Queues one 512-sample window (copied, so the caller may reuse its buffer). `callback` receives
   * the probability, or an error, once the window has been scored. Throws `vad_inference_failed` for a
   * wrong length and `audio_invalid_samples` (AudioFormatError) for NaN/±Infinity samples.
   */
  push(window: Float32Array, callback: VadResultCallback): void {
    if (this.#closed) throw new VadError('vad_inference_failed', 'VAD stream is closed');
    if (window.length !== SILERO_WINDOW) {
      throw new VadError('vad_inference_failed', `a VAD window is ${SILERO_WINDOW} samples, got ${window.length}`);
    }
    // Silero maps NaN to plausible-looking probabilities, so bad samples are refused up front
    // (VadStream sanitizes them before they get here).
    if (!allFinite(window, SILERO_WINDOW)) {
      const i = window.findIndex((v) => !Number.isFinite(v));
      throw new AudioFormatError('audio_invalid_samples', `VAD window sample ${i} is ${String(window[i])}`);
    }
    this.queue.push(window, callback);
    this.#owner.enqueue(this);
  }

  /** Promise form of {@link push}. */
  infer(window: Float32Array): Promise<number> {
    return new Promise((resolve, reject) => {
      // A synchronous throw inside the executor becomes the rejection.
      this.push(window, (error, probability) => (error === undefined ? resolve(probability) : reject(error)));
    });
  }

  /** Forgets the audio history (state and context) as if the stream were new. */
  reset(): void {
    this.state.fill(0);
    this.context.fill(0);
  }

  /** Drops queued windows (their callbacks are not called) and releases the stream. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.queue.dropCallbacks();
    this.#owner.release(this);
  }
}

export class SharedVad {
  readonly #options: SharedVadOptions;
  readonly #logger: Logger;
  readonly #batchWindowMs: number | 'auto';
  readonly #maxBatch: number;
  readonly #maxQueue: number;
  #model: VadModel | undefined;
  #loading: Promise<VadModel> | undefined;
  #waiting: VadInferenceStream[] = [];
  #scheduled = false;
  #running = false;
  #closed = false;
  #streams = 0;
  // Batch buffers, grown by doubling and reused.
  #input = new Float32Array(0);
  #state = new Float32Array(0);
  #batch: VadInferenceStream[] = [];
  /** Holds a window dropped on queue overflow while its callback runs. */
  readonly #dropped = new Float32Array(SILERO_WINDOW);
  #stats = { batches: 0, windows: 0, largestBatch: 0, failedBatches: 0 };
  /** Per-batch observers; with none, a batch costs one length check more. */
  #observers: VadBatchObserver[] = [];

  constructor(options: SharedVadOptions = {}) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger();
    const window = options.batchWindowMs ?? 'auto';
    this.#batchWindowMs = window === 'auto' ? 'auto' : Math.max(0, window);
    this.#maxBatch = Math.max(1, Math.floor(options.maxBatchSize ?? 1024));
    this.#maxQueue = Math.max(1, Math.floor(options.maxQueuePerStream ?? 1024));
    if (options.model !== undefined && typeof options.model !== 'function') this.#model = options.model;
    this.#grow(16);
  }

  get stats(): SharedVadStats {
    return { streams: this.#streams, ...this.#stats };
  }

  openStream(): VadInferenceStream {
    if (this.#closed) throw new VadError('vad_inference_failed', 'SharedVad is closed');
    this.#streams++;
    return new VadInferenceStream(this);
  }

  /** Calls `observer` after every batched inference; the returned function stops it. */
  observeBatches(observer: VadBatchObserver): () => void {
    this.#observers = [...this.#observers, observer];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  /** Loads the model now instead of on the first window (so the first turn does not pay for it). */
  async warmUp(): Promise<void> {
    await this.#loadModel();
  }

  /** Releases the model; queued windows are dropped. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of this.#waiting) stream.queue.dropCallbacks();
    this.#waiting = [];
    const model = this.#model ?? (await this.#loading?.catch(() => undefined));
    this.#model = undefined;
    await model?.close();
  }

  /** @internal called by a stream after it queued a window */
  enqueue(stream: VadInferenceStream): void {
    if (stream.queue.length > this.#maxQueue) {
      // A stream far behind real time: fail its oldest window rather than grow without bound —
      // the oldest not in the running batch (never the head, which may be in it).
      const dropped = this.#dropped;
      const callback = stream.queue.removeAt(Math.max(1, stream.inFlight), dropped);
      callback?.(new VadError('vad_inference_failed', 'VAD queue overflow: window dropped'), 0, dropped);
    }
    if (!stream.waiting && stream.inFlight === 0) {
      stream.waiting = true;
      this.#waiting.push(stream);
    }
    this.#schedule();
  }

  /** @internal */
  release(stream: VadInferenceStream): void {
    this.#streams--;
    if (stream.waiting) {
      stream.waiting = false;
      const index = this.#waiting.indexOf(stream);
      if (index >= 0) this.#waiting.splice(index, 1);
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#closed || this.#waiting.length === 0) return;
    this.#scheduled = true;
    const run = (): void => {
      this.#scheduled = false;
      void this.#flush();
    };
    const wait = this.#batchWindowMs === 'auto' ? (this.#streams < AUTO_BATCH.fromStreams ? 0 : AUTO_BATCH.waitMs) : this.#batchWindowMs;
    if (wait === 0) setImmediate(run);
    else setTimeout(run, wait);
  }

  #loadModel(): Promise<VadModel> {
    if (this.#model !== undefined) return Promise.resolve(this.#model);
    if (this.#loading === undefined) {
      const source = this.#options.model;
      const loading =
        typeof source === 'function'
          ? source()
          : loadSileroModel({
              ...(this.#options.modelPath === undefined ? {} : { modelPath: this.#options.modelPath }),
              ...(this.#options.sessionOptions === undefined ? {} : { sessionOptions: this.#options.sessionOptions }),
              ...(this.#options.graph === undefined ? {} : { graph: this.#options.graph }),
              thread: this.#options.thread ?? 'main',
            });
      this.#loading = loading.then(
        (model) => {
          this.#model = model;
          return model;
        },
        (error: unknown) => {
          this.#loading = undefined; // let a later window try again
          throw error instanceof VadError ? error : new VadError('vad_model_missing', 'cannot load the VAD model', { cause: error });
        },
      );
    }
    return this.#loading;
  }

  async #flush(): Promise<void> {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      let model: VadModel;
      try {
        model = await this.#loadModel();
      } catch (error) {
        this.#failAllWaiting(error instanceof VadError ? error : new VadError('vad_model_missing', String(error)));
        return;
      }
      while (this.#waiting.length > 0 && !this.#closed) {
        const batch = this.#takeBatch();
        if (model.runSteps !== undefined && batch.some((stream) => stream.queue.length > 1)) await this.#runSteps(model, batch);
        else await this.#runBatch(model, batch);
        this.#finishBatch(batch);
      }
    } finally {
      this.#running = false;
      this.#schedule();
    }
  }

  #takeBatch(): VadInferenceStream[] {
    const batch = this.#batch;
    batch.length = 0;
    const count = Math.min(this.#waiting.length, this.#maxBatch);
    for (let i = 0; i < count; i++) {
      const stream = this.#waiting[i] as VadInferenceStream;
      stream.waiting = false;
      stream.inFlight = 1;
      batch.push(stream);
    }
    if (count === this.#waiting.length) this.#waiting.length = 0;
    else this.#waiting.splice(0, count);
    return batch;
  }

  async #runBatch(model: VadModel, batch: VadInferenceStream[]): Promise<void> {
    const n = batch.length;
    this.#grow(n);
    const input = this.#input;
    const state = this.#state;
    const cBase = n * SILERO_STATE;
    for (let i = 0; i < n; i++) {
      const stream = batch[i] as VadInferenceStream;
      const row = i * SILERO_INPUT;
      input.set(stream.context, row);
      input.set(stream.queue.head(), row + SILERO_CONTEXT);
      // [h, c] of the stream -> row i of the h block and of the c block.
      state.set(stream.h, i * SILERO_STATE);
      state.set(stream.c, cBase + i * SILERO_STATE);
    }
    this.#stats.batches++;
    this.#stats.windows += n;
    if (n > this.#stats.largestBatch) this.#stats.largestBatch = n;
    const observers = this.#observers;
    const startedAt = observers.length > 0 ? performance.now() : 0;
    try {
      const out = await model.run(input, state, n);
      if (observers.length > 0) this.#observed(observers, n, (performance.now() - startedAt) / 1000);
      // One pass over the whole output; rows are checked one by one only if something is not finite.
      const finite = allFinite(out.probabilities, n) && allFinite(out.state, 2 * n * SILERO_STATE);
      for (let i = 0; i < n; i++) {
        this.#deliver(batch[i] as VadInferenceStream, out.probabilities, out.state, i, n, finite);
      }
    } catch (error) {
      this.#stats.failedBatches++;
      if (n === 1) {
        this.#fail(batch[0] as VadInferenceStream, error);
        return;
      }
      this.#logger.warn({ err: error, batch: n }, 'VAD batch failed; retrying each stream alone');
      await this.#retryAlone(model, batch);
    }
  }

  /**
   * Streams behind real time (more than one window queued) catch up in one model call: step s scores
   * window s of every stream that has one, each step continuing the state of the step before
   * (VadModel.runSteps; the worker model does all steps in one round trip). Without this a stream
   * advances one window per batch, so once batches come slower than every 32 ms — a busy event loop
   * between them — its backlog only grows. Anything unusual (a failure, a non-finite output) and the
   * batch is scored the ordinary way instead, one window per stream, with its per-stream isolation.
   */
  async #runSteps(model: VadModel, batch: VadInferenceStream[]): Promise<void> {
    const maxSteps = Math.max(1, Math.min(MAX_CATCH_UP_STEPS, Math.floor(this.#maxBatch / batch.length)));
    for (const stream of batch) stream.inFlight = Math.min(stream.queue.length, maxSteps);
    // Most windows first: the streams of step s are then rows 0 … counts[s] − 1.
    batch.sort((a, b) => b.inFlight - a.inFlight);
    const n = batch.length;
    const counts: number[] = [];
    for (let step = 0; step < (batch[0] as VadInferenceStream).inFlight; step++) {
      let rows = 0;
      while (rows < n && (batch[rows] as VadInferenceStream).inFlight > step) rows++;
      counts.push(rows);
    }
    const total = counts.reduce((a, b) => a + b, 0);
    this.#grow(Math.max(total, n));
    const input = this.#input;
    const state = this.#state;
    let row = 0;
    for (let step = 0; step < counts.length; step++) {
      for (let i = 0; i < (counts[step] as number); i++, row++) {
        const queue = (batch[i] as VadInferenceStream).queue;
        const at = row * SILERO_INPUT;
        if (step === 0) input.set((batch[i] as VadInferenceStream).context, at);
        else input.set(queue.at(step - 1).subarray(SILERO_WINDOW - SILERO_CONTEXT), at);
        input.set(queue.at(step), at + SILERO_CONTEXT);
      }
    }
    for (let i = 0; i < n; i++) {
      const stream = batch[i] as VadInferenceStream;
      state.set(stream.h, i * SILERO_STATE);
      state.set(stream.c, (n + i) * SILERO_STATE);
    }
    const observers = this.#observers;
    const startedAt = observers.length > 0 ? performance.now() : 0;
    let out: { probabilities: Float32Array; state: Float32Array } | undefined;
    try {
      out = await model.runSteps?.(input, state, counts);
    } catch (error) {
      this.#logger.warn({ err: error, windows: total }, 'VAD catch-up batch failed; scoring one window per stream');
    }
    if (out === undefined || !allFinite(out.probabilities, total) || !allFinite(out.state, 2 * n * SILERO_STATE)) {
      this.#stats.failedBatches++;
      for (const stream of batch) stream.inFlight = 1;
      await this.#runBatch(model, batch);
      return;
    }
    if (observers.length > 0) this.#observed(observers, total, (performance.now() - startedAt) / 1000);
    this.#stats.batches += counts.length;
    this.#stats.windows += total;
    if (n > this.#stats.largestBatch) this.#stats.largestBatch = n;
    // State and context after each stream's last window, then the windows' results, in order.
    for (let i = 0; i < n; i++) {
      const stream = batch[i] as VadInferenceStream;
      stream.h.set(out.state.subarray(i * SILERO_STATE, (i + 1) * SILERO_STATE));
      stream.c.set(out.state.subarray((n + i) * SILERO_STATE, (n + i + 1) * SILERO_STATE));
      stream.context.set(stream.queue.at(stream.inFlight - 1).subarray(SILERO_WINDOW - SILERO_CONTEXT));
    }
    row = 0;
    for (let step = 0; step < counts.length; step++) {
      for (let i = 0; i < (counts[step] as number); i++, row++) {
        this.#complete(batch[i] as VadInferenceStream, undefined, out.probabilities[row] as number);
      }
    }
  }

  #observed(observers: readonly VadBatchObserver[], windows: number, seconds: number): void {
    for (const observer of observers) {
      try {
        observer(windows, seconds);
      } catch (error) {
        this.#logger.error({ err: error }, 'VAD batch observer threw');
      }
    }
  }

  /** Re-runs each row of a failed batch by itself, from row i of the batch buffers. */
  async #retryAlone(model: VadModel, batch: VadInferenceStream[]): Promise<void> {
    const n = batch.length;
    const input = new Float32Array(SILERO_INPUT);
    const state = new Float32Array(2 * SILERO_STATE);
    for (let i = 0; i < n; i++) {
      const stream = batch[i] as VadInferenceStream;
      input.set(this.#input.subarray(i * SILERO_INPUT, (i + 1) * SILERO_INPUT));
      state.set(this.#state.subarray(i * SILERO_STATE, (i + 1) * SILERO_STATE), 0);
      state.set(this.#state.subarray((n + i) * SILERO_STATE, (n + i + 1) * SILERO_STATE), SILERO_STATE);
      try {
        const out = await model.run(input, state, 1);
        this.#deliver(stream, out.probabilities, out.state, 0, 1, false);
      } catch (error) {
        this.#fail(stream, error);
      }
    }
  }

  #deliver(stream: VadInferenceStream, probabilities: Float32Array, nextState: Float32Array, i: number, n: number, finite: boolean): void {
    const probability = probabilities[i];
    const h = i * SILERO_STATE;
    const c = (n + i) * SILERO_STATE;
    if (
      probability === undefined ||
      (!finite && (!Number.isFinite(probability) || !allFinite(nextState, SILERO_STATE, h) || !allFinite(nextState, SILERO_STATE, c)))
    ) {
      this.#fail(stream, new Error(`non-finite VAD output (${String(probability)})`));
      return;
    }
    const own = stream.state;
    for (let k = 0; k < SILERO_STATE; k++) {
      own[k] = nextState[h + k] as number;
      own[SILERO_STATE + k] = nextState[c + k] as number;
    }
    const samples = stream.queue.buffer;
    const tail = stream.queue.headOffset + SILERO_WINDOW - SILERO_CONTEXT;
    const context = stream.context;
    for (let k = 0; k < SILERO_CONTEXT; k++) context[k] = samples[tail + k] as number;
    this.#complete(stream, undefined, probability);
  }

  #fail(stream: VadInferenceStream, cause: unknown): void {
    stream.reset();
    const error =
      cause instanceof VadError ? cause : new VadError('vad_inference_failed', 'VAD inference failed for this stream', { cause });
    this.#logger.warn({ err: cause }, 'VAD inference failed for one stream; its state was reset');
    this.#complete(stream, error, 0);
  }

  /** Pops the head window of `stream` and calls its callback; a throwing callback is logged, not propagated. */
  #complete(stream: VadInferenceStream, error: VadError | undefined, probability: number): void {
    const queue = stream.queue;
    if (queue.length === 0) return;
    const callback = queue.headCallback();
    if (callback !== undefined) {
      try {
        callback(error, probability, queue.head());
      } catch (thrown) {
        this.#logger.error({ err: thrown }, 'VAD result callback threw');
      }
    }
    queue.shift(); // after the callback, so the window it read stays intact
  }

  #finishBatch(batch: VadInferenceStream[]): void {
    for (const stream of batch) {
      stream.inFlight = 0;
      if (!stream.closed && stream.queue.length > 0 && !stream.waiting) {
        stream.waiting = true;
        this.#waiting.push(stream);
      }
    }
    batch.length = 0;
  }

  #failAllWaiting(error: VadError): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const stream of waiting) {
      stream.waiting = false;
      while (stream.queue.length > 0) this.#complete(stream, error, 0);
    }
  }

  #grow(n: number): void {
    if (this.#input.length >= n * SILERO_INPUT) return;
    let capacity = Math.max(16, this.#input.length / SILERO_INPUT);
    while (capacity < n) capacity *= 2;
    this.#input = new Float32Array(capacity * SILERO_INPUT);
    this.#state = new Float32Array(2 * capacity * SILERO_STATE);
  }
}

/**
 * True if `length` values from `offset` are all finite. x·0 is 0 for finite x and NaN for NaN/±Infinity;
 * four running sums keep the loop short and branch-free (the hot path checks every pushed window).
 */
function allFinite(values: Float32Array, length: number, offset = 0): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = offset + length;
  let i = offset;
  for (; i + 3 < end; i += 4) {
    a += (values[i] as number) * 0;
    b += (values[i + 1] as number) * 0;
    c += (values[i + 2] as number) * 0;
    d += (values[i + 3] as number) * 0;
  }
  for (; i < end; i++) a += (values[i] as number) * 0;
  return a + b + c + d === 0;
}

let shared: SharedVad | undefined;

/** The process-wide SharedVad (created on first call; the model loads on first use). */
export function getSharedVad(): SharedVad {
  shared ??= new SharedVad();
  return shared;
}

/** Replaces the process-wide SharedVad (tests, custom model options). Returns the previous one. */
export function setSharedVad(vad: SharedVad | undefined): SharedVad | undefined {
  const previous = shared;
  shared = vad;
  return previous;
}
