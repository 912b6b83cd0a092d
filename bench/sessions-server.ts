/**
 * The server side of bench/sessions, bench/soak and bench/latency's playout figures: a VoiceServer with
 * real VAD and instant fake providers, in its own process (started by the bench with `fork`) so the
 * clients' work is not counted against it. Bench-only routes:
 *
 *   POST /bench/reset     restart the process figures (CPU, event-loop delay), the turn count and egress
 *   GET  /bench/stats     sessions, turns, CPU %, RSS, heap, event-loop delay p50/p99/max, main-thread event-loop
 *                         utilization and CPU user/system (the process's, all threads) since the reset
 *   GET  /bench/memory    rss, heapUsed, active handles (process.getActiveResourcesInfo) now; ?gc=1 first
 *                         runs a full GC when the process has --expose-gc
 *   GET  /bench/clock     this process's wall clock (performance.timeOrigin + now), for the client's offset
 *   GET  /bench/egress    per socket that sent audio: when its first frame left, how long its frames took
 *                         to leave minus the audio they carry, the most any frame left after its slot
 *   POST /bench/inbound   the clients' send times (the side channel, below) → inbound lag figures
 *   GET  /bench/heap-snapshot  writes a V8 heap snapshot of this process (in the temp dir), returns its path
 *
 * Inbound lag, client send → VAD input. Audio frames are raw PCM, so their send times travel on a side
 * channel: after the run the client posts, per connection (its local port = our socket's remote port),
 * the wall time it handed frame k to ws.send(). Here, with BENCH_INBOUND=1, two observers — bench code,
 * nothing in src/ knows of them — see when frame k reaches the VAD:
 *  - `ws` emits each binary message synchronously into the session's inbound path (transport →
 *    resampler → VAD stream), so a wrapper around the socket's 'message' emit knows which connection's
 *    frame k is being handled at that moment;
 *  - the SharedVad handed to the server is a subclass whose streams note each 512-sample window when it
 *    is pushed (the frame that completed it has reached the VAD's input) and when it has been scored
 *    (after the cross-session batch ran: what the session's turn logic waits for).
 * The join is by (port, k) after the run, so the side channel costs the measured process nothing while
 * it runs. Everything is kept in typed arrays per connection.
 */
import { WebSocket } from 'ws';
import { FakeLlm, FakeStt, FakeTts } from '../src/providers/fake/index.js';
import { VoiceServer } from '../src/server/index.js';
import { SharedVad, type VadInferenceStream } from '../src/vad/shared-vad.js';
import { ProcessMeter } from './process-meter.js';
import { summarize } from './stats.js';

const wallNow = (): number => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------------------------ egress timing

// When each binary (audio) frame leaves the server, per socket. Measurement only.
// `maxLate`: the most any frame k left after `first + k × 20 ms` (its slot, were the stream exact).
const egress = new Map<WebSocket, { first: number; last: number; frames: number; maxLate: number }>();
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
  if (typeof data !== 'string') {
    const now = performance.now();
    const entry = egress.get(this);
    if (entry === undefined) {
      egress.set(this, { first: now, last: now, frames: 1, maxLate: 0 });
      this.once('close', () => egress.delete(this));
    } else {
      entry.maxLate = Math.max(entry.maxLate, now - (entry.first + entry.frames * 20));
      entry.last = now;
      entry.frames++;
    }
  }
  return (send as (...args: unknown[]) => void).call(this, data, ...rest);
} as typeof WebSocket.prototype.send;

// ------------------------------------------------------------------------------------ inbound timing

/** One connection's inbound audio: binary frames received, and per VAD window the frame that completed it. */
class InboundRecord {
  frames = 0;
  windows = 0;
  frameOf = new Int32Array(1024);
  inputAt = new Float64Array(1024);
  scoredAt = new Float64Array(1024);

  add(frame: number, at: number): number {
    if (this.windows === this.frameOf.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.frameOf = grow(this.frameOf);
      this.inputAt = grow(this.inputAt);
      this.scoredAt = grow(this.scoredAt);
    }
    const w = this.windows++;
    this.frameOf[w] = frame;
    this.inputAt[w] = at;
    this.scoredAt[w] = Number.NaN;
    return w;
  }
}

const inboundOn = process.env['BENCH_INBOUND'] === '1';
const inbound = new Map<number, InboundRecord>(); // by the client's port
/** The connection whose binary frame is being handled right now (set only inside its 'message' emit). */
let handling: { record: InboundRecord; frame: number } | undefined;

if (inboundOn) {
  const emit = WebSocket.prototype.emit;
  WebSocket.prototype.emit = function (this: WebSocket, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message' || args[1] !== true) return emit.call(this, event, ...args);
    const port = (this as unknown as { _socket?: { remotePort?: number } })._socket?.remotePort ?? -1;
    let record = inbound.get(port);
    if (record === undefined) inbound.set(port, (record = new InboundRecord()));
    handling = { record, frame: record.frames++ };
    try {
      return emit.call(this, event, ...args);
    } finally {
      handling = undefined;
    }
  };
}

/** Notes, per pushed window, the frame that completed it and when it was pushed and scored. */
class ObservedVad extends SharedVad {
  override openStream(): VadInferenceStream {
    const stream = super.openStream();
    const push = stream.push.bind(stream);
    stream.push = (window, callback) => {
      const now = handling === undefined ? undefined : wallNow();
      if (handling === undefined || now === undefined) return push(window, callback);
      const record = handling.record;
      const w = record.add(handling.frame, now);
      push(window, (error, probability, samples) => {
        record.scoredAt[w] = wallNow();
        callback(error, probability, samples);
      });
    };
    return stream;
  }
}

interface InboundPost {
  /** Add to a client wall time to get this process's (measured by the client with /bench/clock). */
  readonly offsetMs: number;
  /** Only frames sent at or after this client wall time count (the run, not the setup). */
  readonly fromMs: number;
  readonly sessions: readonly { readonly port: number; readonly sentAt: readonly number[] }[];
}

function inboundFigures(post: InboundPost): unknown {
  const toInput: number[] = [];
  const toScored: number[] = [];
  let unmatched = 0;
  for (const { port, sentAt } of post.sessions) {
    const record = inbound.get(port);
    if (record === undefined) {
      unmatched += sentAt.length;
      continue;
    }
    for (let w = 0; w < record.windows; w++) {
      const sent = sentAt[record.frameOf[w] as number];
      if (sent === undefined || sent < post.fromMs) continue;
      const at = sent + post.offsetMs;
      toInput.push((record.inputAt[w] as number) - at);
      const scored = record.scoredAt[w] as number;
      if (!Number.isNaN(scored)) toScored.push(scored - at);
    }
  }
  return { toInput: summarize(toInput), toScored: summarize(toScored), unmatched };
}

// ------------------------------------------------------------------------------------ the server

const meter = new ProcessMeter();
let turns = 0;
/** Since the reset: the main thread's event-loop utilization (its busy share), the process's CPU user/system. */
let elu = performance.eventLoopUtilization();
let cpu = process.cpuUsage();
let cpuAt = performance.now();
const threadFigures = (): { mainThreadBusyPercent: number; cpuUserPercent: number; cpuSystemPercent: number } => {
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - cpuAt;
  return {
    mainThreadBusyPercent: performance.eventLoopUtilization(elu).utilization * 100,
    cpuUserPercent: (used.user / 1000 / ms) * 100,
    cpuSystemPercent: (used.system / 1000 / ms) * 100,
  };
};

const vadThread = process.env['BENCH_VAD_THREAD'] === 'worker' ? 'worker' : process.env['BENCH_VAD_THREAD'] === 'main' ? 'main' : undefined;

// Instant providers: the first token and the first audio chunk come at once; the rest streams
// faster than real time (LLM 500 tokens/s, TTS 100 ms of audio every 5 ms = 20× real time), as
// fast real providers do. (A fake that produced a whole reply in one go would never yield to the
// event loop and measure the fake, not the runtime.)
const stt = new FakeStt({ recognize: () => 'hello there how are you today' });
const llm = new FakeLlm({ respond: () => [process.env['BENCH_REPLY'] ?? 'I am fine, thank you.'], tokenIntervalMs: 2 });
const tts = new FakeTts({ sampleRate: 16_000, msPerWord: Number(process.env['BENCH_MS_PER_WORD'] ?? 150), chunkIntervalMs: 5 });
// The fakes keep a record of every call for tests (its requests with the whole history, a ledger
// entry); the bench forgets the finished ones every few seconds, or the soak would measure them.
const forget = setInterval(() => {
  llm.requests.length = 0;
  llm.calls.length = 0;
  tts.texts.length = 0;
  for (const ledger of [stt.ledger, llm.ledger, tts.ledger]) {
    const open = ledger.open();
    ledger.calls.length = 0;
    ledger.calls.push(...open);
  }
}, 5_000);
forget.unref();

const server = new VoiceServer({
  port: 0,
  providers: { stt, llm, tts },
  // BENCH_VAD_THREAD=worker | main: where the model scores batches (default: the SharedVad default, main).
  sharedVad: new (inboundOn ? ObservedVad : SharedVad)(vadThread === undefined ? {} : { thread: vadThread }),
  session: { limits: { maxSessions: 10_000, maxPerIp: 10_000, maxPerPrincipal: 10_000 } },
  maxMessagesPerSecond: 1_000,
  hooks: { onTurnEnd: () => void turns++ },
});

const json = (res: import('node:http').ServerResponse, value: unknown): void => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(value));
};

server.route('POST', '/bench/reset', (_req, res) => {
  meter.reset();
  turns = 0;
  egress.clear();
  elu = performance.eventLoopUtilization();
  cpu = process.cpuUsage();
  cpuAt = performance.now();
  res.end('{}');
});
server.route('GET', '/bench/egress', (_req, res) => {
  json(res, [...egress.values()].map((e) => ({ first: e.first, durationError: e.last + 20 - e.first - e.frames * 20, maxLate: e.maxLate })));
});
server.route('GET', '/bench/stats', (_req, res) => {
  json(res, { sessions: server.sessions, turns, ...meter.figures(), ...threadFigures() });
});
server.route('GET', '/bench/clock', (_req, res) => {
  json(res, { wallMs: wallNow() });
});
server.route('GET', '/bench/memory', (req, res) => {
  const gc = (globalThis as { gc?: () => void }).gc;
  const collected = gc !== undefined && (req.url ?? '').includes('gc=1');
  if (collected) gc();
  const resources = process.getActiveResourcesInfo();
  const byType: Record<string, number> = {};
  for (const type of resources) byType[type] = (byType[type] ?? 0) + 1;
  const memory = process.memoryUsage();
  json(res, {
    sessions: server.sessions,
    rss: memory.rss,
    heapTotal: memory.heapTotal,
    heapUsed: memory.heapUsed,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    handles: resources.length,
    byType,
    collected,
  });
});
server.route('GET', '/bench/heap-snapshot', async (_req, res) => {
  // For finding what keeps memory: a V8 heap snapshot of this process (open it in Chrome DevTools).
  const [{ writeHeapSnapshot }, { tmpdir }, { join }] = await Promise.all([import('node:v8'), import('node:os'), import('node:path')]);
  json(res, { path: writeHeapSnapshot(join(tmpdir(), `sessions-server-${process.pid}-${Date.now()}.heapsnapshot`)) });
});
server.route('POST', '/bench/inbound', async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  json(res, inboundOn ? inboundFigures(JSON.parse(Buffer.concat(chunks).toString('utf8')) as InboundPost) : { error: 'start the server with BENCH_INBOUND=1' });
});

const address = await server.start();
process.send?.({ url: address.url, port: address.port });
process.on('message', (message) => {
  if (message === 'stop') void server.stop().then(() => process.exit(0));
});
