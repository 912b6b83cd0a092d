/**
 * The Silero model in a worker thread: the same ORT session and batch contract as the in-thread model
 * (model.ts), but the inference runs off the event loop. onnxruntime-node's `session.run` computes
 * synchronously on the calling thread (its promise only defers the start with setImmediate), so on the
 * main thread every batch blocks every session for as long as it takes (bench/sessions' profile at
 * 100 live streams: 13 % of the main thread). Here the main thread only copies the batch into a
 * transfer buffer and reads the result; the worker computes while the loop serves sockets and timers.
 * A catch-up batch (runSteps) runs all its steps in the worker, in one round trip.
 *
 * Buffers go back and forth by transfer (no copy across threads) and are reused: the batch's input
 * and state go to the worker, come back with the next state written into the state buffer, and wait
 * in a pool for the next batch. The worker is unref'd while idle (an open model never keeps a process
 * alive) and ref'd while a batch is in it. If it dies, the batches in it fail with
 * `vad_inference_failed` and the next batch starts a new worker from the same model bytes.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { VadError } from '../errors.js';
import type { VadModel, VadModelOutput } from './model.js';

/** Runs in the worker: plain CommonJS, no TypeScript, nothing of ours imported. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const { input: INPUT, state: STATE, sampleRate } = workerData.shape;
// 0 idle, 1 in ORT (native code: terminating the thread now would abort the process), 2 stopping.
// The main thread moves 0 → 2 and waits while it is 1; the thread starts 1 (loading).
const word = new Int32Array(workerData.word);
const idle = () => {
  Atomics.store(word, 0, 0);
  Atomics.notify(word, 0);
};
let session;
let sr;
const ready = ort.InferenceSession.create(workerData.bytes, workerData.sessionOptions).then(
  (created) => {
    session = created;
    idle();
    if (session.inputNames.includes('sr')) sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(sampleRate)]), []);
    parentPort.postMessage({ type: 'ready', inputNames: session.inputNames });
  },
  (error) => {
    idle();
    parentPort.postMessage({ type: 'failed', error: String((error && error.message) || error) });
  },
);
// One job at a time, in order (a batch, or the final close).
let chain = ready;
parentPort.on('message', (job) => {
  chain = chain.then(() => handle(job)).catch(() => undefined);
});
async function handle(job) {
  if (job.type === 'close') {
    if (session && Atomics.compareExchange(word, 0, 0, 1) === 0) {
      await session.release();
      idle();
    }
    parentPort.close();
    return;
  }
  const { id, counts, input, state } = job;
  if (Atomics.compareExchange(word, 0, 0, 1) !== 0) {
    parentPort.postMessage({ id, error: 'the VAD worker is stopping', input, state }, [input.buffer, state.buffer]);
    return;
  }
  try {
    // counts: rows per step; step s + 1 continues the state of rows 0 … counts[s + 1] − 1 of step s.
    const first = counts[0];
    let total = 0;
    for (const n of counts) total += n;
    const probabilities = new Float32Array(total);
    const final = new Float32Array(2 * first * STATE);
    let current = state.subarray(0, 2 * first * STATE);
    let rows = 0;
    for (let s = 0; s < counts.length; s++) {
      const n = counts[s];
      const feeds = {
        input: new ort.Tensor('float32', input.subarray(rows * INPUT, (rows + n) * INPUT), [n, INPUT]),
        state: new ort.Tensor('float32', current, [2, n, STATE]),
      };
      if (sr) feeds.sr = sr;
      const result = await session.run(feeds);
      if (!result.output || !result.stateN) throw new Error('Silero model returned no output/stateN');
      probabilities.set(result.output.data, rows);
      const out = result.stateN.data;
      const next = s + 1 < counts.length ? counts[s + 1] : 0;
      for (let i = next; i < n; i++) {
        final.set(out.subarray(i * STATE, (i + 1) * STATE), i * STATE);
        final.set(out.subarray((n + i) * STATE, (n + i + 1) * STATE), (first + i) * STATE);
      }
      if (next > 0) {
        const packed = new Float32Array(2 * next * STATE);
        packed.set(out.subarray(0, next * STATE));
        packed.set(out.subarray(n * STATE, (n + next) * STATE), next * STATE);
        current = packed;
      }
      rows += n;
    }
    state.set(final);
    idle();
    parentPort.postMessage({ id, probabilities, input, state }, [probabilities.buffer, input.buffer, state.buffer]);
  } catch (error) {
    idle();
    parentPort.postMessage({ id, error: String((error && error.message) || error), input, state }, [input.buffer, state.buffer]);
  }
}
`;

export interface WorkerModelShape {
  /** Floats per input row (context + window). */
  readonly input: number;
  /** Floats per state row. */
  readonly state: number;
  readonly sampleRate: number;
}

interface Buffers {
  input: Float32Array;
  state: Float32Array;
}

type Reply = { id: number; probabilities: Float32Array; input: Float32Array; state: Float32Array } | { id: number; error: string; input: Float32Array; state: Float32Array };

interface Pending {
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: VadError) => void;
}

/** One worker thread and the word that says whether it is inside ORT (see WORKER_SOURCE). */
interface Thread {
  readonly worker: Worker;
  readonly word: Int32Array;
  exited: boolean;
}

const IDLE = 0;
const IN_ORT = 1;
const STOPPING = 2;
/** The longest a thread is waited for to leave ORT before it is stopped (a batch takes milliseconds). */
const QUIESCE_MS = 2_000;

/**
 * Waits (blocking) until the thread is not inside ORT and marks it stopping, so that no batch starts
 * any more and it can be terminated: terminating a thread while onnxruntime-node runs in it aborts the
 * whole process. False if it did not leave ORT within QUIESCE_MS.
 */
function quiesce(thread: Thread): boolean {
  const deadline = performance.now() + QUIESCE_MS;
  for (;;) {
    const was = Atomics.compareExchange(thread.word, 0, IDLE, STOPPING);
    if (was !== IN_ORT) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(thread.word, 0, IN_ORT, left);
  }
}

/** Live threads: when the process exits, each is quiesced before Node terminates it. */
const live = new Set<Thread>();
let exitHook = false;

let ortPath: string | undefined;

export class WorkerSileroModel implements VadModel {
  readonly graph: 'batched' | 'original';
  readonly #bytes: Uint8Array;
  readonly #sessionOptions: InferenceSession.SessionOptions;
  readonly #shape: WorkerModelShape;
  /** Undefined after the thread died, until the next batch starts another. */
  #thread: Thread | undefined;
  #starting: Promise<Thread> | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly #pool: Buffers[] = [];
  /** The buffers of the last result, handed back to the pool on the next run (the caller reads them until then). */
  #lent: Buffers | undefined;
  #closed = false;

  private constructor(thread: Thread, graph: 'batched' | 'original', bytes: Uint8Array, sessionOptions: InferenceSession.SessionOptions, shape: WorkerModelShape) {
    this.graph = graph;
    this.#bytes = bytes;
    this.#sessionOptions = sessionOptions;
    this.#shape = shape;
    this.#adopt(thread);
  }

  /**
   * Starts a worker with an ORT session over `bytes` (kept, to start a new worker if this one dies).
   * Rejects with `vad_model_missing` when the session cannot be created or is not Silero v5.
   */
  static async start(bytes: Uint8Array, sessionOptions: InferenceSession.SessionOptions, shape: WorkerModelShape): Promise<WorkerSileroModel> {
    const { thread, inputNames } = await spawn(bytes, sessionOptions, shape);
    for (const name of ['input', 'state']) {
      if (!inputNames.includes(name)) {
        await stop(thread);
        throw new VadError('vad_model_missing', `not Silero v5 (no input "${name}")`);
      }
    }
    return new WorkerSileroModel(thread, inputNames.includes('sr') ? 'original' : 'batched', bytes, sessionOptions, shape);
  }

  run(input: Float32Array, state: Float32Array, batch: number): Promise<VadModelOutput> {
    return this.runSteps(input, state, [batch]);
  }

  /** All the steps in the worker, in one round trip (see {@link VadModel.runSteps}). */
  async runSteps(input: Float32Array, state: Float32Array, counts: readonly number[]): Promise<VadModelOutput> {
    if (this.#closed) throw new VadError('vad_inference_failed', 'VAD model is closed');
    if (this.#lent !== undefined) {
      this.#pool.push(this.#lent);
      this.#lent = undefined;
    }
    const { worker } = this.#thread ?? (await this.#restart());
    const { input: rowIn, state: rowState } = this.#shape;
    const first = counts[0] ?? 0;
    const rows = counts.reduce((a, b) => a + b, 0);
    const buffers = this.#take(rows, first);
    buffers.input.set(input.subarray(0, rows * rowIn));
    buffers.state.set(state.subarray(0, 2 * first * rowState));
    const id = this.#nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, counts: [...counts], input: buffers.input, state: buffers.state }, [buffers.input.buffer as ArrayBuffer, buffers.state.buffer as ArrayBuffer]);
    });
    const back = { input: reply.input, state: reply.state };
    if ('error' in reply) {
      this.#pool.push(back);
      throw new VadError('vad_inference_failed', `VAD inference failed: ${reply.error}`);
    }
    this.#lent = back;
    return { probabilities: reply.probabilities, state: reply.state.subarray(0, 2 * first * rowState) };
  }

  /** Ends the worker once the batch in it (if any) is done. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const thread = this.#thread ?? (await this.#starting?.catch(() => undefined));
    this.#thread = undefined;
    if (thread !== undefined) await stop(thread);
    this.#failPending('VAD model is closed');
  }

  /**
   * Stops the worker the way a crash would (once it is out of ORT, which cannot be interrupted): the
   * batches still in it fail with `vad_inference_failed` (a SharedVad retries them) and the next batch
   * starts a new worker.
   */
  async terminateWorker(): Promise<void> {
    const thread = this.#thread;
    if (thread === undefined) return;
    quiesce(thread);
    await thread.worker.terminate();
  }

  /** Pooled buffers for `rows` input rows and `states` state rows (grown by doubling: a steady load allocates nothing). */
  #take(rows: number, states: number): Buffers {
    const { input: rowIn, state: rowState } = this.#shape;
    const index = this.#pool.findIndex((b) => b.input.length >= rows * rowIn && b.state.length >= 2 * states * rowState);
    if (index >= 0) return this.#pool.splice(index, 1)[0] as Buffers;
    let capacity = 16;
    while (capacity < rows) capacity *= 2;
    return { input: new Float32Array(capacity * rowIn), state: new Float32Array(2 * capacity * rowState) };
  }

  #adopt(thread: Thread): void {
    this.#thread = thread;
    const { worker } = thread;
    worker.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      pending.resolve(reply);
    });
    worker.on('error', () => undefined); // 'exit' follows and does the work
    worker.once('exit', (code) => {
      if (thread !== this.#thread) return;
      this.#thread = undefined;
      this.#failPending(`VAD worker exited (code ${code})`);
    });
    // Last: the first 'message' listener a Worker gets refs its port again (node:worker_threads).
    worker.unref();
  }

  /** A new worker from the same bytes, after the last one died (one start at a time). */
  #restart(): Promise<Thread> {
    this.#starting ??= spawn(this.#bytes, this.#sessionOptions, this.#shape).then(
      ({ thread }) => {
        this.#starting = undefined;
        if (this.#closed) {
          void stop(thread);
          throw new VadError('vad_inference_failed', 'VAD model is closed');
        }
        this.#adopt(thread);
        return thread;
      },
      (error: unknown) => {
        this.#starting = undefined;
        throw new VadError('vad_inference_failed', 'cannot restart the VAD worker', { cause: error });
      },
    );
    return this.#starting;
  }

  #failPending(message: string): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(new VadError('vad_inference_failed', message));
  }
}

async function spawn(bytes: Uint8Array, sessionOptions: InferenceSession.SessionOptions, shape: WorkerModelShape): Promise<{ thread: Thread; inputNames: string[] }> {
  ortPath ??= createRequire(import.meta.url).resolve('onnxruntime-node');
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const thread of live) quiesce(thread);
    });
  }
  const word = new Int32Array(new SharedArrayBuffer(4));
  word[0] = IN_ORT; // loading the session is native work too
  // The bytes are copied into the worker (structured clone), so they stay here for a restart.
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, bytes, sessionOptions, shape, word: word.buffer } });
  const thread: Thread = { worker, word, exited: false };
  live.add(thread);
  worker.once('exit', () => {
    thread.exited = true;
    live.delete(thread);
  });
  try {
    const first = await new Promise<{ type: 'ready'; inputNames: string[] } | { type: 'failed'; error: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`VAD worker exited (code ${code}) while loading`)));
    });
    if (first.type === 'failed') throw new Error(first.error);
    return { thread, inputNames: first.inputNames };
  } catch (error) {
    await stop(thread);
    throw new VadError('vad_model_missing', 'cannot start the Silero model in a worker thread', { cause: error });
  }
}

/** Ends a thread: asks it to release its session and exit, or terminates it once it is out of ORT. */
async function stop(thread: Thread): Promise<void> {
  const { worker } = thread;
  if (thread.exited) return;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage({ type: 'close' });
  const timer = setTimeout(() => {
    if (quiesce(thread)) void worker.terminate();
  }, QUIESCE_MS);
  timer.unref();
  await exited;
  clearTimeout(timer);
}
