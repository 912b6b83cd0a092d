/**
 * A pool of WebRTC transport workers: `worker_threads` threads (default one per core) that run
 * werift (ICE, DTLS, SRTP), Opus and the inbound jitter buffer of every WebRTC session, so the main
 * thread keeps only the sessions' machines, VAD and signalling. `createTransport()` returns a
 * {@link WebRtcWorkerTransport}: the same AudioTransport the session already knows.
 *
 * A worker that dies (an uncaught throw, `process.exit`, `worker.terminate()`) ends only its own
 * sessions, each with a `transport_failed` TransportError through `onClosed`; a fresh worker takes
 * its place and the other workers' sessions go on untouched.
 *
 * The worker file is `webrtc-worker.js` next to this module in the built package. Run from the
 * TypeScript sources (tests, `tsx`), it is `webrtc-worker.ts`, started through tsx's loader API:
 * on Node 20 a worker's entry does not go through loaders registered with `--import tsx`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError, TransportError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { WebRtcTransport, type WebRtcPeerTransport, type WebRtcTransportOptions } from './webrtc.js';
import { WebRtcWorkerTransport, type WorkerLink, type WorkerSessionHandler } from './webrtc-worker-transport.js';
import type { FrameBatch, FromWorker, ToWorker, WorkerData } from './webrtc-worker-messages.js';

export interface WebRtcWorkerPoolOptions {
  /** Worker threads. Default: one per core (`os.availableParallelism()`). */
  readonly workers?: number;
  /**
   * How long `clearOutput()` waits for frames already on their way to the worker to go out before it
   * withdraws the rest (see WebRtcWorkerTransport.clearOutput); 0 withdraws at once whatever the
   * worker has not claimed. Default 5 ms.
   */
  readonly clearWaitMs?: number;
  /** Modules (URLs or absolute paths) each worker imports before it takes sessions: instrumentation, probes. */
  readonly preload?: readonly (string | URL)[];
  readonly logger?: Logger;
}

export interface WebRtcWorkerInfo {
  readonly threadId: number;
  /** Open WebRTC sessions on this worker. */
  readonly sessions: number;
  /** False until the worker has loaded its modules and taken messages. */
  readonly ready: boolean;
}

const DEFAULT_CLEAR_WAIT_MS = 5;

/** One worker thread and its port: batches outbound frames per event-loop turn, routes what comes back. */
class WorkerSlot implements WorkerLink {
  readonly worker: Worker;
  readonly threadId: number;
  readonly handlers = new Map<number, WorkerSessionHandler>();
  ready = false;
  dead = false;
  #frames: Array<{ id: number; index: number; pcm: Int16Array }> = [];
  #samples = 0;
  #flushScheduled = false;
  readonly #onDeath: (slot: WorkerSlot, how: string) => void;

  constructor(worker: Worker, onDeath: (slot: WorkerSlot, how: string) => void) {
    this.worker = worker;
    this.threadId = worker.threadId;
    this.#onDeath = onDeath;
    worker.unref(); // an idle worker does not keep the process alive (one with sessions does: attach)
    worker.on('message', (message: FromWorker) => this.#receive(message));
    worker.on('error', (error) => this.#died(`threw: ${error instanceof Error ? error.message : String(error)}`));
    worker.on('exit', (code) => this.#died(`exited with code ${code}`));
  }

  post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.dead) return;
    // Frames queued before this message must reach the worker before it: one port, one order.
    this.flush();
    this.worker.postMessage(message, transfer);
  }

  queueFrame(id: number, index: number, frame: Int16Array): void {
    if (this.dead) return;
    // Copied now: the caller may reuse its array once sendAudio returns.
    this.#frames.push({ id, index, pcm: frame.slice() });
    this.#samples += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Posts the frames queued in this turn, as one message with one transferred buffer. */
  flush(): void {
    this.#flushScheduled = false;
    const queued = this.#frames;
    if (queued.length === 0 || this.dead) return;
    this.#frames = [];
    const ids = new Int32Array(queued.length);
    const indices = new Int32Array(queued.length);
    const lengths = new Int32Array(queued.length);
    const pcm = new Int16Array(this.#samples);
    this.#samples = 0;
    let offset = 0;
    queued.forEach((entry, i) => {
      ids[i] = entry.id;
      indices[i] = entry.index;
      lengths[i] = entry.pcm.length;
      pcm.set(entry.pcm, offset);
      offset += entry.pcm.length;
    });
    const batch: FrameBatch = { ids, indices, lengths, pcm };
    this.worker.postMessage({ type: 'frames', batch } satisfies ToWorker, [ids.buffer, indices.buffer, lengths.buffer, pcm.buffer]);
  }

  attach(id: number, handler: WorkerSessionHandler): void {
    this.handlers.set(id, handler);
    if (this.handlers.size === 1) this.worker.ref();
  }

  detach(id: number): void {
    if (this.handlers.delete(id) && this.handlers.size === 0) this.worker.unref();
  }

  #receive(message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        this.ready = true;
        return;
      case 'audio': {
        const { ids, lengths, pcm } = message.batch;
        let offset = 0;
        for (let i = 0; i < ids.length; i++) {
          const length = lengths[i] as number;
          this.handlers.get(ids[i] as number)?.audio(pcm.subarray(offset, offset + length));
          offset += length;
        }
        return;
      }
      default:
        this.handlers.get(message.id)?.message(message);
    }
  }

  #died(how: string): void {
    if (this.dead) return;
    this.dead = true;
    this.#frames = [];
    this.#onDeath(this, how);
  }
}

/** Where the worker entry is and how to start it: the built `.js`, or the `.ts` source through tsx. */
function startWorker(data: WorkerData): Worker {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return newWorker(new URL('./webrtc-worker.js', self), { workerData: data });
  const entry = new URL('./webrtc-worker.ts', self).href;
  const bootstrap = `import(${JSON.stringify(tsxLoaderApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return newWorker(bootstrap, { eval: true, workerData: data });
}

/**
 * A worker inherits the process's Node flags, except those of a `node --input-type=… -e …` parent,
 * which stop a worker from loading its file: they are left out. (Flags given explicitly are checked,
 * and per-process ones such as --max-old-space-size refused; then the worker gets none.)
 */
function newWorker(entry: URL | string, options: { eval?: boolean; workerData: WorkerData }): Worker {
  const argv = process.execArgv;
  if (!argv.some((arg) => arg.startsWith('--input-type'))) return new Worker(entry, options);
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-e' || arg === '--eval' || arg === '-p' || arg === '--print') i++;
    else if (!arg.startsWith('--input-type') && !arg.startsWith('--eval=') && !arg.startsWith('--print=')) kept.push(arg);
  }
  try {
    return new Worker(entry, { ...options, execArgv: kept });
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
    return new Worker(entry, { ...options, execArgv: [] });
  }
}

let tsxApiUrl: string | undefined;

/** tsx's ESM loader API (`tsx/esm/api`, its `import` entry), resolved from tsx's own exports map. */
function tsxLoaderApi(): string {
  if (tsxApiUrl !== undefined) return tsxApiUrl;
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve('tsx/package.json');
  } catch (error) {
    throw new ConfigError('webrtc.workers', 'running the WebRTC workers from the TypeScript sources needs the tsx package', { cause: error });
  }
  const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, { import?: { default?: string } | string }> }).exports;
  const entry = exports?.['./esm/api'];
  const path = typeof entry === 'object' ? entry.import : undefined;
  const file = typeof path === 'string' ? path : path?.default;
  if (file === undefined) throw new ConfigError('webrtc.workers', 'this tsx version has no esm/api export');
  tsxApiUrl = pathToFileURL(join(dirname(manifest), file)).href;
  return tsxApiUrl;
}

function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  return /^[a-z][a-z0-9+.-]*:/i.test(module) ? module : pathToFileURL(module).href;
}

export class WebRtcWorkerPool {
  /** Worker threads this pool keeps running (once started). */
  readonly size: number;
  readonly #logger: Logger;
  readonly #clearWaitMs: number;
  readonly #data: WorkerData;
  /** One entry per worker; a dead worker's entry is replaced in place. */
  readonly #slots: Array<WorkerSlot | undefined>;
  #nextId = 1;
  #started = false;
  #closing: Promise<void> | undefined;

  constructor(options: WebRtcWorkerPoolOptions = {}) {
    const workers = options.workers ?? availableParallelism();
    if (!Number.isInteger(workers) || workers < 1) throw new ConfigError('webrtc.workers', `must be an integer >= 1, got ${String(workers)}`);
    const clearWaitMs = options.clearWaitMs ?? DEFAULT_CLEAR_WAIT_MS;
    if (!Number.isFinite(clearWaitMs) || clearWaitMs < 0) throw new ConfigError('webrtc.clearWaitMs', `must be a number >= 0, got ${String(clearWaitMs)}`);
    this.size = workers;
    this.#clearWaitMs = clearWaitMs;
    this.#logger = (options.logger ?? silentLogger()).child({ component: 'webrtc-workers' });
    this.#data = { preload: (options.preload ?? []).map(moduleUrl) };
    this.#slots = Array.from({ length: workers }, () => undefined);
  }

  /** The running workers (empty before the first transport). */
  get workers(): readonly WebRtcWorkerInfo[] {
    return this.#slots.filter((slot): slot is WorkerSlot => slot !== undefined && !slot.dead).map((slot) => ({
      threadId: slot.threadId,
      sessions: slot.handlers.size,
      ready: slot.ready,
    }));
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * A WebRTC transport on the worker with the fewest sessions (workers start with the first call).
   * Synchronous: messages to a worker that is still starting wait in its port.
   */
  createTransport(options: WebRtcTransportOptions = {}): WebRtcWorkerTransport {
    if (this.closed) throw new TransportError('transport_failed', 'the WebRTC worker pool is closed');
    if (!this.#started) {
      this.#started = true;
      for (let i = 0; i < this.size; i++) this.#spawn(i);
    }
    let best: WorkerSlot | undefined;
    for (let i = 0; i < this.size; i++) {
      // A worker that died before it was ready is not replaced at once (no crash loop); here it is.
      const slot = this.#slots[i] ?? this.#spawn(i);
      if (best === undefined || slot.handlers.size < best.handlers.size) best = slot;
    }
    const slot = best as WorkerSlot;
    return new WebRtcWorkerTransport(slot, this.#nextId++, options, this.#clearWaitMs);
  }

  /**
   * Stops one worker the way a crash would: its sessions end with `transport_failed` and a fresh
   * worker takes its place. For tests, and for shedding a worker that is stuck.
   */
  async terminateWorker(threadId: number): Promise<void> {
    const slot = this.#slots.find((candidate) => candidate?.threadId === threadId);
    if (slot === undefined) return;
    await slot.worker.terminate();
  }

  /** Closes every transport, then stops the workers. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const slots = this.#slots.filter((slot): slot is WorkerSlot => slot !== undefined);
      await Promise.all(slots.flatMap((slot) => [...slot.handlers.values()].map((handler) => handler.close())));
      for (let i = 0; i < this.#slots.length; i++) this.#slots[i] = undefined;
      await Promise.all(slots.map((slot) => slot.worker.terminate().catch(() => undefined)));
    })();
    return this.#closing;
  }

  #spawn(index: number): WorkerSlot {
    const slot = new WorkerSlot(startWorker(this.#data), (dead, how) => this.#died(index, dead, how));
    this.#slots[index] = slot;
    this.#logger.debug({ threadId: slot.threadId }, 'WebRTC worker started');
    return slot;
  }

  #died(index: number, slot: WorkerSlot, how: string): void {
    if (this.closed) return;
    const sessions = [...slot.handlers.values()];
    for (const id of [...slot.handlers.keys()]) slot.detach(id);
    this.#logger.error({ threadId: slot.threadId, sessions: sessions.length }, `WebRTC worker ${how}; its sessions end, a new worker takes its place`);
    if (this.#slots[index] === slot) {
      // A worker that never got ready (a broken install, a preload that throws) is replaced on demand.
      if (slot.ready) this.#spawn(index);
      else this.#slots[index] = undefined;
    }
    for (const handler of sessions) {
      handler.failed(new TransportError('transport_failed', `the WebRTC transport worker (thread ${slot.threadId}) ${how}`));
    }
  }
}

/** The `webrtc` option of VoiceServer. */
export interface WebRtcServerOptions {
  /**
   * Transport worker threads for WebRTC sessions (werift, Opus, the jitter buffer). Default: one per
   * core. `0` runs every WebRTC transport in the main thread.
   */
  readonly workers?: number;
  /** A pool of your own (shared between servers, or with `preload`ed instrumentation); the server does not close it. */
  readonly pool?: WebRtcWorkerPool;
}

/** How a server makes its WebRTC transports. */
export interface WebRtcTransportFactory {
  create(options: WebRtcTransportOptions): WebRtcPeerTransport;
  /** Stops the workers the factory started (not a pool it was given). */
  close(): Promise<void>;
}

/** Validates the `webrtc` option; the pool starts with the first WebRTC session. */
export function webRtcTransportFactory(options: WebRtcServerOptions = {}, logger: Logger = silentLogger()): WebRtcTransportFactory {
  const given = options.pool;
  if (given !== undefined) return { create: (transport) => given.createTransport(transport), close: async () => undefined };
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 0) throw new ConfigError('webrtc.workers', `must be an integer >= 0, got ${String(workers)}`);
  if (workers === 0) return { create: (transport) => new WebRtcTransport(transport), close: async () => undefined };
  let pool: WebRtcWorkerPool | undefined;
  return {
    create: (transport) => {
      pool ??= new WebRtcWorkerPool({ workers, logger });
      return pool.createTransport(transport);
    },
    close: async () => {
      await pool?.close();
    },
  };
}
