/**
 * N concurrent WebRTC voice sessions (werift on both ends, Opus both ways, loopback), each streaming
 * real fixture speech in real time — test/fixtures/hello.48k.wav as 20 ms Opus frames, then 4.5 s of
 * silence, over and over — against a server (its own process, bench/webrtc-server.ts) with real
 * Silero VAD and instant fake providers whose every reply is 3.0 s of agent audio.
 *
 * Prints, per N, side by side: turns completed / expected, server CPU / RSS per session / event-loop
 * lag, and the agent's audio as each client received it over RTP — packets sent vs received (loss =
 * sequence gaps + packets the server sent that never arrived), late / out-of-order packets, arrival
 * spread against the 20 ms RTP schedule, RFC 3550 jitter, and reply duration as received vs as sent —
 * plus how many sessions were "clean" and what the client processes cost.
 *
 * Clean session: it received agent audio, lost 0 packets, saw 0 late / reordered / duplicate packets
 * and 0 Opus decode errors, its arrival-spread p99 is < 20 ms, and every reply arrived within ±20 ms
 * of the duration the server sent. Arrival spread of a packet = (arrival − RTP media time) minus the
 * smallest such transit in its reply: how much later than the 20 ms schedule it came, i.e. the
 * jitter buffer a player needs to play it without a gap.
 *
 * The client peers are built directly on werift (as src/client/webrtc.ts does) because the SDK's
 * WebRtcAudioLink does not expose RTP headers; signalling goes through the SDK's VoxClient.
 * Clients run in worker processes (default 2, `--client-workers K`) so one JS thread's DTLS/SRTP
 * is not the ceiling; their CPU and event-loop lag are printed too.
 *
 * The server runs its WebRTC transports (werift, Opus, jitter buffer) in `--webrtc-workers K`
 * worker threads (its `webrtc.workers` option; default: the server's default, one per core; 0 = all
 * in the server's main thread). Per thread it reports CPU time (1 core = 100), the event loop's busy
 * share and event-loop delay.
 *
 *   npx tsx bench/webrtc.ts [N ...] [--webrtc-workers K] [--client-workers K]
 *       default N: 25 50 100 150; prints the curve and the highest N with every session clean
 *   BENCH_RUN_MS=27000 (speech phase per N), BENCH_SILENCE_MS=4500 (silence after each utterance),
 *   BENCH_DECODE=0 (skip Opus decoding on the clients), BENCH_VAD_THREAD=worker|main (the server's VAD thread),
 *   BENCH_SERVER_PROF=dir (write a V8 .cpuprofile of the server's main thread per N into dir)
 */
import { execSync, fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { RtpPacket } from 'werift';
import { float32ToInt16 } from '../src/audio/frame.js';
import { readWav } from '../src/audio/wav.js';
import { VoxClient } from '../src/client/index.js';
import { isNewerSequence, sequenceGap } from '../src/protocol/rtp-sequencer.js';
import { percentile, table } from './stats.js';
import type { SentSpurtSummary } from './webrtc-server.js';

const SELF = fileURLToPath(import.meta.url);
const FRAME_SAMPLES = 960; // 20 ms at 48 kHz
const FRAME_MS = 20;
const RUN_MS = Number(process.env['BENCH_RUN_MS'] ?? 27_000);
const DRAIN_MS = 5_000; // silence after the last utterance, so the last replies play out
const SILENCE_MS = Number(process.env['BENCH_SILENCE_MS'] ?? 4_500); // after each utterance: VAD hangover (480 ms) + the 3 s reply + margin
const REPLY_TEXT = 'Sure, I can help with that. Your table for two is booked for tomorrow at seven, see you both then.';
const MS_PER_WORD = 150;
const REPLY_MS = REPLY_TEXT.split(/\s+/).length * MS_PER_WORD;
const CLEAN_SPREAD_MS = 20;
const REPLY_GAP_MS = 1_000; // packets further apart than this belong to different replies
const CLEAN_DURATION_MS = 20;
const DECODE = process.env['BENCH_DECODE'] !== '0';

// ---------------------------------------------------------------------------------------------
// Shared between the parent and the client workers
// ---------------------------------------------------------------------------------------------

interface ReceivedSpurt {
  readonly firstSeq: number;
  readonly packets: number;
  /** Last arrival − first arrival + 20 ms. */
  readonly spanMs: number;
  /** Per-packet arrival spread (ms, 0.1 ms resolution), sorted. */
  readonly spreads: number[];
}

interface SessionResult {
  readonly index: number;
  readonly ssrc: number | undefined;
  readonly expectedTurns: number;
  readonly repliesDone: number;
  readonly repliesInterrupted: number;
  /** Replies the server paused because it heard the caller, then resumed (`interruption.false`). */
  readonly falseInterruptions: number;
  readonly packets: number;
  readonly seqLost: number;
  readonly late: number;
  readonly decodeErrors: number;
  /** RFC 3550 interarrival jitter estimate at its highest during the run, ms. */
  readonly rfcJitterMaxMs: number;
  readonly spurts: ReceivedSpurt[];
}

interface WorkerResult {
  readonly sessions: SessionResult[];
  readonly cpuPercent: number;
  readonly loopLagMs: { p50: number; p99: number; max: number };
  /** How late the worker dispatched its outbound frames against their 20 ms schedule. */
  readonly sendLateMs: { p99: number; max: number };
}

type ToWorker =
  | { type: 'connect'; url: string; indices: number[]; total: number }
  | { type: 'go' }
  | { type: 'report' }
  | { type: 'close' };

type FromWorker =
  | { type: 'connected'; ok: number; failed: number; errors: string[] }
  | { type: 'result'; result: WorkerResult }
  | { type: 'closed' };

interface Speech {
  /** Opus payloads of the utterance, 20 ms each. */
  readonly frames: Buffer[];
  /** One Opus payload of digital silence. */
  readonly silence: Buffer;
  readonly cycleFrames: number;
  readonly runFrames: number;
}

function speechSchedule(): { speechFrames: number; cycleFrames: number; runFrames: number; samples: Int16Array } {
  const wav = readWav(new Uint8Array(readFileSync(fileURLToPath(new URL('../test/fixtures/hello.48k.wav', import.meta.url)))));
  if (wav.sampleRate !== 48_000 || wav.channels !== 1) throw new Error('hello.48k.wav must be mono 48 kHz');
  const samples = float32ToInt16(wav.samples);
  const speechFrames = Math.ceil(samples.length / FRAME_SAMPLES);
  return { speechFrames, cycleFrames: speechFrames + SILENCE_MS / FRAME_MS, runFrames: Math.floor(RUN_MS / FRAME_MS), samples };
}

function staggerFrames(index: number, total: number, cycleFrames: number): number {
  return Math.floor((index * cycleFrames) / total);
}

/** Utterances of session `index` that fit entirely into the speech phase (the rest of it is silence). */
function expectedTurns(index: number, total: number): number {
  const { speechFrames, cycleFrames, runFrames } = schedule;
  const start = staggerFrames(index, total, cycleFrames);
  let turns = 0;
  while (start + turns * cycleFrames + speechFrames <= runFrames) turns++;
  return turns;
}

const schedule = speechSchedule();

// ---------------------------------------------------------------------------------------------
// Client worker: K sessions, each a VoxClient (signalling) + a werift peer (media)
// ---------------------------------------------------------------------------------------------

async function worker(): Promise<void> {
  const werift = await import('werift');
  const opus = await import('@evan/opus');

  // Encode the utterance and silence once; every session sends the same (real) Opus bytes.
  const encoder = new opus.Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
  encoder.bitrate = 32_000;
  const frames: Buffer[] = [];
  for (let f = 0; f < schedule.speechFrames; f++) {
    const pcm = new Int16Array(FRAME_SAMPLES);
    pcm.set(schedule.samples.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES));
    frames.push(Buffer.from(encoder.encode(pcm).slice()));
  }
  let silencePayload = Buffer.alloc(0);
  for (let f = 0; f < 10; f++) silencePayload = Buffer.from(encoder.encode(new Int16Array(FRAME_SAMPLES)).slice());
  const speech: Speech = { frames, silence: silencePayload, cycleFrames: schedule.cycleFrames, runFrames: schedule.runFrames };

  class Session {
    readonly client: VoxClient;
    pc: InstanceType<typeof werift.RTCPeerConnection> | undefined;
    sender: InstanceType<typeof werift.RTCRtpSender> | undefined;
    readonly decoder = DECODE ? new opus.Decoder({ channels: 1, sample_rate: 48_000 }) : undefined;
    // outbound
    seq = Math.floor(Math.random() * 0x10000);
    ts = Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
    stagger = 0;
    // inbound
    measuring = false;
    ssrc: number | undefined;
    lastSeq: number | undefined;
    packets = 0;
    seqLost = 0;
    late = 0;
    decodeErrors = 0;
    jitter = 0;
    jitterMax = 0;
    prevArrival = 0;
    prevTs = 0;
    spurt: { firstSeq: number; packets: number; firstArrival: number; lastArrival: number; transit: number[] } | undefined;
    readonly spurts: ReceivedSpurt[] = [];
    repliesDone = 0;
    repliesInterrupted = 0;
    falseInterruptions = 0;

    constructor(
      url: string,
      readonly index: number,
      readonly expected: number,
    ) {
      this.client = new VoxClient({ url, audio: { transport: 'webrtc', sampleRate: 48_000 }, heartbeatMs: 0, reconnect: false });
      this.client.on('reply.done', (m) => {
        if (!this.measuring) return;
        if (m.interrupted) this.repliesInterrupted++;
        else this.repliesDone++;
      });
      this.client.on('message', (m) => {
        if (this.measuring && m.type === 'interruption.false') this.falseInterruptions++;
      });
    }

    async connect(): Promise<void> {
      const client = this.client;
      await client.connect();
      const pc = new werift.RTCPeerConnection({
        iceServers: [],
        iceUseIpv4: false,
        iceUseIpv6: false,
        iceAdditionalHostAddresses: ['127.0.0.1'],
        codecs: { audio: [werift.useOPUS()], video: [] },
      });
      this.pc = pc;
      const transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
      this.sender = transceiver.sender;
      pc.onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((rtp) => this.receive(rtp, performance.now()));
      });
      client.on('webrtc.ice', (m) => {
        const init =
          m.candidate === null || m.candidate === ''
            ? null
            : { candidate: m.candidate, ...(m.sdpMid == null ? {} : { sdpMid: m.sdpMid }), ...(m.sdpMLineIndex == null ? {} : { sdpMLineIndex: m.sdpMLineIndex }) };
        pc.addIceCandidate(init).catch(() => {});
      });
      const answer = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no webrtc.answer within 30 s')), 30_000);
        client.once('webrtc.answer', (m) => {
          clearTimeout(timer);
          resolve(m.sdp);
        });
      });
      const offer = await pc.createOffer();
      pc.onIceCandidate.subscribe((candidate) => {
        client.send(
          candidate === undefined
            ? { type: 'webrtc.ice', candidate: null }
            : { type: 'webrtc.ice', candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? null, sdpMLineIndex: candidate.sdpMLineIndex ?? null },
        );
      });
      client.send({ type: 'webrtc.offer', sdp: offer.sdp, trickle: true });
      await pc.setLocalDescription(offer);
      await pc.setRemoteDescription({ type: 'answer', sdp: await answer });
      await new Promise<void>((resolve, reject) => {
        if (pc.connectionState === 'connected') return resolve();
        const timer = setTimeout(() => reject(new Error('WebRTC did not connect within 30 s')), 30_000);
        pc.connectionStateChange.subscribe((state) => {
          if (state === 'connected') {
            clearTimeout(timer);
            resolve();
          } else if (state === 'failed' || state === 'closed') {
            clearTimeout(timer);
            reject(new Error(`WebRTC ${state}`));
          }
        });
      });
    }

    send(payload: Buffer): void {
      const sender = this.sender;
      if (sender === undefined) return;
      this.seq = (this.seq + 1) & 0xffff;
      this.ts = (this.ts + FRAME_SAMPLES) >>> 0;
      const header = new werift.RtpHeader({ sequenceNumber: this.seq, timestamp: this.ts, marker: false, payloadType: sender.codec?.payloadType ?? 111 });
      sender.sendRtp(new werift.RtpPacket(header, payload)).catch(() => {});
    }

    receive(rtp: RtpPacket, arrival: number): void {
      if (!this.measuring) return;
      const { sequenceNumber: seq, timestamp: ts, ssrc } = rtp.header;
      this.ssrc ??= ssrc;
      if (this.lastSeq !== undefined) {
        if (!isNewerSequence(seq, this.lastSeq)) {
          this.late++;
          return;
        }
        this.seqLost += sequenceGap(this.lastSeq, seq);
      }
      this.lastSeq = seq;
      this.packets++;
      if (this.decoder !== undefined && rtp.payload.length > 0) {
        try {
          this.decoder.decode(rtp.payload);
        } catch {
          this.decodeErrors++;
        }
      }
      // RFC 3550 §6.4.1: J += (|D| − J) / 16, D = difference of the transit times of consecutive packets.
      if (this.packets > 1) {
        const d = arrival - this.prevArrival - ((ts - this.prevTs) >>> 0) / 48;
        this.jitter += (Math.abs(d) - this.jitter) / 16;
        if (this.jitter > this.jitterMax) this.jitterMax = this.jitter;
      }
      // One reply = packets less than REPLY_GAP_MS apart (replies are seconds apart). Lateness is
      // measured against a continuous 20 ms schedule from the reply's first packet, by sequence
      // number, not RTP timestamp: the server's sequencer jumps the timestamp over any stall > 100 ms,
      // which a receiver would play as a silent gap in the middle of the reply.
      const spurt = this.spurt;
      if (spurt !== undefined && arrival - spurt.lastArrival <= REPLY_GAP_MS) {
        spurt.packets++;
        spurt.lastArrival = arrival;
        spurt.transit.push(arrival - ((seq - spurt.firstSeq) & 0xffff) * FRAME_MS);
      } else {
        this.closeSpurt();
        this.spurt = { firstSeq: seq, packets: 1, firstArrival: arrival, lastArrival: arrival, transit: [arrival] };
      }
      this.prevArrival = arrival;
      this.prevTs = ts;
    }

    closeSpurt(): void {
      const spurt = this.spurt;
      if (spurt === undefined) return;
      this.spurt = undefined;
      const min = Math.min(...spurt.transit);
      this.spurts.push({
        firstSeq: spurt.firstSeq,
        packets: spurt.packets,
        spanMs: spurt.lastArrival - spurt.firstArrival + FRAME_MS,
        spreads: spurt.transit.map((t) => Math.round((t - min) * 10) / 10).sort((a, b) => a - b),
      });
    }

    result(): SessionResult {
      this.closeSpurt();
      return {
        index: this.index,
        ssrc: this.ssrc,
        expectedTurns: this.expected,
        repliesDone: this.repliesDone,
        repliesInterrupted: this.repliesInterrupted,
        falseInterruptions: this.falseInterruptions,
        packets: this.packets,
        seqLost: this.seqLost,
        late: this.late,
        decodeErrors: this.decodeErrors,
        rfcJitterMaxMs: this.jitterMax,
        spurts: this.spurts,
      };
    }

    async close(): Promise<void> {
      await this.pc?.close().catch(() => {});
      await this.client.close().catch(() => {});
    }
  }

  const sessions: Session[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let cpu = process.cpuUsage();
  let cpuAt = performance.now();
  const sendLate: number[] = [];
  let stopSending = false;

  const post = (message: FromWorker): void => void process.send?.(message);

  const go = (): void => {
    for (const s of sessions) s.measuring = true;
    loop.reset();
    loop.enable();
    cpu = process.cpuUsage();
    cpuAt = performance.now();
    const start = performance.now();
    let frame = 0;
    const tick = (): void => {
      if (stopSending) return;
      const now = performance.now();
      const due = Math.floor((now - start) / FRAME_MS);
      if (due >= frame) sendLate.push(now - (start + frame * FRAME_MS));
      while (frame <= due) {
        for (const s of sessions) {
          let payload = speech.silence;
          const local = frame - s.stagger;
          if (local >= 0 && frame < speech.runFrames) {
            const k = Math.floor(local / speech.cycleFrames);
            const pos = local - k * speech.cycleFrames;
            // Only utterances that fit entirely before the end of the speech phase are spoken.
            if (pos < speech.frames.length && s.stagger + k * speech.cycleFrames + speech.frames.length <= speech.runFrames) {
              payload = speech.frames[pos] ?? speech.silence;
            }
          }
          s.send(payload);
        }
        frame++;
      }
      setTimeout(tick, Math.max(0, start + frame * FRAME_MS - performance.now()));
    };
    tick();
  };

  process.on('message', (raw) => {
    const message = raw as ToWorker;
    switch (message.type) {
      case 'connect': {
        void (async () => {
          const errors: string[] = [];
          let ok = 0;
          const queue = message.indices.map((index) => new Session(message.url, index, expectedTurns(index, message.total)));
          for (const s of queue) s.stagger = staggerFrames(s.index, message.total, speech.cycleFrames);
          const batch = 4;
          for (let i = 0; i < queue.length; i += batch) {
            await Promise.all(
              queue.slice(i, i + batch).map(async (s) => {
                try {
                  await s.connect();
                  sessions.push(s);
                  ok++;
                } catch (error) {
                  errors.push(error instanceof Error ? error.message : String(error));
                  await s.close();
                }
              }),
            );
          }
          post({ type: 'connected', ok, failed: queue.length - ok, errors: errors.slice(0, 3) });
        })();
        break;
      }
      case 'go':
        go();
        break;
      case 'report': {
        const used = process.cpuUsage(cpu);
        const elapsedMs = performance.now() - cpuAt;
        loop.disable();
        const lagOf = (ns: number): number => Math.max(0, ns / 1e6 - 1);
        const late = [...sendLate].sort((a, b) => a - b);
        post({
          type: 'result',
          result: {
            sessions: sessions.map((s) => s.result()),
            cpuPercent: ((used.user + used.system) / 1000 / elapsedMs) * 100,
            loopLagMs: { p50: lagOf(loop.percentile(50)), p99: lagOf(loop.percentile(99)), max: lagOf(loop.max) },
            sendLateMs: { p99: percentile(late, 99), max: late.at(-1) ?? 0 },
          },
        });
        break;
      }
      case 'close':
        stopSending = true;
        void (async () => {
          await Promise.race([Promise.all(sessions.map((s) => s.close())), new Promise((resolve) => setTimeout(resolve, 5_000))]);
          post({ type: 'closed' });
          process.exit(0);
        })();
        break;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Parent: server process + worker processes, one run per N, then the table
// ---------------------------------------------------------------------------------------------

interface ServerStats {
  sessions: number;
  turns: number;
  interruptedTurns: number;
  cpuPercent: number;
  rssBytes: number;
  loopDelayMs: { p50: number; p99: number; max: number };
  webrtcWorkers: number;
  mainCpuPercent: number | null;
  gc: { msPerS: number; maxMs: number }[];
  workerCpuPercent: (number | null)[];
  mainBusyPercent: number;
  workerBusyPercent: number[];
  workerLoopDelayMs: { p50: number; p99: number; max: number }[];
  window: { startUs: number; endUs: number };
  rtpIdleMs: number;
  writeDelayMs: { firstP50: number; firstMax: number; restP99: number };
}

interface CpuProfile {
  readonly nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  readonly startTime: number;
  readonly samples: number[];
  readonly timeDeltas: number[];
}

function profileCategory(functionName: string, url: string): string {
  if (functionName === '(idle)' || functionName === '(garbage collector)' || functionName === '(program)') return functionName;
  if (url.includes('@evan/opus')) return functionName === 'decode' ? 'Opus decode (inbound, native)' : functionName === 'encode' ? 'Opus encode (outbound, native)' : 'Opus other';
  if (url.startsWith('wasm') || /^[0-9a-f]{8}$/.test(url)) return 'speex resampler (wasm)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] === 'werift') return 'werift (RTP/SRTP/ICE/DTLS JS)';
  if (pkg) return pkg[1] ?? url;
  const own = /\/(src|machines)\/([^/]+)\//.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  if (url.includes('crypto')) return 'node crypto (SRTP AES/HMAC)';
  if (url.includes('dgram') || url.includes('udp')) return 'node dgram (UDP send)';
  if (url === '') return '(native, unattributed)';
  return 'node internals (other)';
}

/** Self time of the server's main thread inside the measured window, by category, in % of the window. */
function profileBreakdown(dir: string, pid: number, window: { startUs: number; endUs: number }): Map<string, number> {
  const file = readdirSync(dir).find((f) => f.includes(`.${pid}.0.`) && f.endsWith('.cpuprofile'));
  const out = new Map<string, number>();
  if (file === undefined) return out;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < window.startUs || t > window.endUs) continue;
    const frame = byId.get(profile.samples[i] ?? -1);
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const category = frame === undefined ? '(unknown)' : profileCategory(frame.functionName, frame.url);
    out.set(category, (out.get(category) ?? 0) + dt);
  }
  for (const [k, v] of out) out.set(k, (v / Math.max(1, total)) * 100);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function startServer(webrtcWorkers: number | undefined): Promise<{ base: string; url: string; pid: number; stop: () => Promise<void> }> {
  const profileDir = process.env['BENCH_SERVER_PROF'];
  const child = fork(fileURLToPath(new URL('./webrtc-server.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BENCH_REPLY: REPLY_TEXT,
      BENCH_MS_PER_WORD: String(MS_PER_WORD),
      BENCH_WEBRTC_WORKERS: webrtcWorkers === undefined ? '' : String(webrtcWorkers),
    },
  });
  const info = await new Promise<{ url: string; port: number }>((resolve) => child.once('message', (m) => resolve(m as { url: string; port: number })));
  return {
    base: `http://127.0.0.1:${info.port}`,
    url: info.url,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.send('stop');
      }),
  };
}

class WorkerHandle {
  readonly child: ChildProcess;
  readonly #waiting = new Map<string, (message: FromWorker) => void>();

  constructor() {
    this.child = fork(SELF, ['--worker'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (raw) => {
      const message = raw as FromWorker;
      const resolve = this.#waiting.get(message.type);
      this.#waiting.delete(message.type);
      resolve?.(message);
    });
  }

  request<T extends FromWorker['type']>(message: ToWorker, reply: T): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve) => {
      this.#waiting.set(reply, (m) => resolve(m as Extract<FromWorker, { type: T }>));
      this.child.send(message);
    });
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'close' } satisfies ToWorker);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 8_000);
    await exited;
    clearTimeout(timer);
  }
}

async function getJson<T>(url: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  return (await (await fetch(url, { method })).json()) as T;
}

type Column = Map<string, string | number>;

async function run(n: number, workerCount: number, webrtcWorkers: number | undefined): Promise<{ column: Column; clean: boolean; notes: string[]; profile: Map<string, number> | undefined }> {
  const server = await startServer(webrtcWorkers);
  const before = await getJson<ServerStats>(`${server.base}/bench/stats`);
  const k = Math.max(1, Math.min(workerCount, n));
  const workers = Array.from({ length: k }, () => new WorkerHandle());
  const connectStart = performance.now();
  const connected = await Promise.all(
    workers.map((w, i) =>
      w.request({ type: 'connect', url: server.url, indices: Array.from({ length: n }, (_, j) => j).filter((j) => j % k === i), total: n }, 'connected'),
    ),
  );
  const connectS = (performance.now() - connectStart) / 1000;
  const failed = connected.reduce((a, c) => a + c.failed, 0);
  const notes: string[] = [];
  if (failed > 0) notes.push(`N=${n}: ${failed} sessions failed to connect (${connected.flatMap((c) => c.errors).slice(0, 2).join('; ')})`);
  await sleep(500);

  await getJson(`${server.base}/bench/reset`, 'POST');
  for (const w of workers) w.child.send({ type: 'go' } satisfies ToWorker);
  await sleep(RUN_MS + DRAIN_MS);
  // An overloaded server may still be playing replies out: wait (up to 10 s more) until no agent
  // packet has left for 1.2 s, so every packet the server sent is one the clients had time to get.
  let stats = await getJson<ServerStats>(`${server.base}/bench/stats`);
  let overrunMs = 0;
  while (stats.rtpIdleMs < 1_200 && overrunMs < 10_000) {
    await sleep(250);
    overrunMs += 250;
    stats = await getJson<ServerStats>(`${server.base}/bench/stats`);
  }
  if (overrunMs > 0) notes.push(`N=${n}: agent audio was still leaving the server ${(overrunMs / 1000).toFixed(2)} s after the ${DRAIN_MS / 1000} s drain`);
  // Snapshot what the server sent, then give in-flight packets time to land before the clients report.
  const senders = await getJson<Record<string, SentSpurtSummary[]>>(`${server.base}/bench/senders`);
  await sleep(300);
  const results = await Promise.all(workers.map((w) => w.request({ type: 'report' }, 'result')));
  await Promise.all(workers.map((w) => w.close()));
  await server.stop();
  const profileDir = process.env['BENCH_SERVER_PROF'];
  const profile = profileDir ? profileBreakdown(profileDir, server.pid, stats.window) : undefined;

  const sessions = results.flatMap((r) => r.result.sessions);
  const expected = sessions.reduce((a, s) => a + s.expectedTurns, 0) + failed * expectedTurns(0, n);
  const done = sessions.reduce((a, s) => a + s.repliesDone, 0);
  const interrupted = sessions.reduce((a, s) => a + s.repliesInterrupted, 0);
  const falseInterruptions = sessions.reduce((a, s) => a + s.falseInterruptions, 0);

  let sentPackets = 0;
  let receivedPackets = 0;
  let lostTotal = 0;
  let lateTotal = 0;
  let decodeErrors = 0;
  let sessionsWithLoss = 0;
  let clean = 0;
  let rfcJitterMax = 0;
  const pooledSpread: number[] = [];
  const sessionSpreadP99: number[] = [];
  const durationErrors: number[] = [];
  let repliesSent = 0;
  let repliesReceivedFull = 0;
  const serverSpread: number[] = [];
  const serverSpanErrors: number[] = [];
  const dirty = { noAudio: 0, loss: 0, late: 0, spread: 0, duration: 0, decode: 0 };

  for (const spurts of Object.values(senders)) {
    for (const sent of spurts) {
      for (const v of sent.spreads) serverSpread.push(v);
      serverSpanErrors.push(sent.sendSpanMs - sent.packets * FRAME_MS);
    }
  }

  for (const s of sessions) {
    const sent = s.ssrc === undefined ? [] : (senders[String(s.ssrc)] ?? []);
    const sentHere = sent.reduce((a, p) => a + p.packets, 0);
    sentPackets += sentHere;
    receivedPackets += s.packets;
    repliesSent += sent.length;
    const lost = Math.max(s.seqLost, sentHere - s.packets);
    lostTotal += lost;
    lateTotal += s.late;
    decodeErrors += s.decodeErrors;
    if (lost > 0) sessionsWithLoss++;
    rfcJitterMax = Math.max(rfcJitterMax, s.rfcJitterMaxMs);
    const spreads: number[] = [];
    let durationOk = true;
    for (const r of s.spurts) {
      for (const v of r.spreads) spreads.push(v);
      const match = sent.find((p) => ((r.firstSeq - p.firstSeq) & 0xffff) < p.packets);
      if (match === undefined) continue;
      if (r.packets === match.packets) repliesReceivedFull++;
      const error = r.spanMs - match.packets * FRAME_MS;
      durationErrors.push(error);
      if (Math.abs(error) > CLEAN_DURATION_MS) durationOk = false;
    }
    spreads.sort((a, b) => a - b);
    for (const v of spreads) pooledSpread.push(v);
    const p99 = spreads.length === 0 ? Number.NaN : percentile(spreads, 99);
    if (spreads.length > 0) sessionSpreadP99.push(p99);
    const reasons = {
      noAudio: s.packets === 0,
      loss: lost > 0,
      late: s.late > 0,
      decode: s.decodeErrors > 0,
      spread: !(p99 < CLEAN_SPREAD_MS),
      duration: !durationOk,
    };
    for (const key of Object.keys(reasons) as (keyof typeof reasons)[]) if (reasons[key]) dirty[key]++;
    if (!Object.values(reasons).some(Boolean)) clean++;
  }
  pooledSpread.sort((a, b) => a - b);
  sessionSpreadP99.sort((a, b) => a - b);
  serverSpread.sort((a, b) => a - b);
  const absDur = durationErrors.map(Math.abs).sort((a, b) => a - b);
  const absSrvSpan = serverSpanErrors.map(Math.abs).sort((a, b) => a - b);
  const clientCpu = results.map((r) => r.result.cpuPercent);
  const clientLagP99 = Math.max(...results.map((r) => r.result.loopLagMs.p99));
  const clientLagMax = Math.max(...results.map((r) => r.result.loopLagMs.max));
  const sendLateP99 = Math.max(...results.map((r) => r.result.sendLateMs.p99));

  const column: Column = new Map<string, string | number>([
    ['sessions connected', `${n - failed}/${n}`],
    ['connect time s', connectS],
    ['turns done/expected (client reply.done)', `${done}/${expected}`],
    ['turns interrupted (barge-in by next utterance)', interrupted],
    ['replies paused by caller speech, resumed', falseInterruptions],
    ['server turns ended (onTurnEnd)', stats.turns],
    ['server WebRTC worker threads', stats.webrtcWorkers],
    ['server CPU % (process, 1 core = 100)', stats.cpuPercent],
    ['server main thread CPU % / loop busy %', `${stats.mainCpuPercent === null ? '?' : stats.mainCpuPercent.toFixed(0)} / ${stats.mainBusyPercent.toFixed(0)}`],
    [
      'server transport workers CPU % each',
      stats.workerCpuPercent.length === 0 ? '-' : stats.workerCpuPercent.map((c) => (c === null ? '?' : c.toFixed(0))).join(' / '),
    ],
    ['server transport workers loop busy % each', stats.workerBusyPercent.length === 0 ? '-' : stats.workerBusyPercent.map((c) => c.toFixed(0)).join(' / ')],
    ['server GC ms/s per thread (main, workers)', stats.gc.map((g) => g.msPerS.toFixed(0)).join(' / ')],
    ['server GC longest pause ms per thread', stats.gc.map((g) => g.maxMs.toFixed(0)).join(' / ')],
    ['server RSS/session MB', (stats.rssBytes - before.rssBytes) / n / 1e6],
    ['server RSS MB', stats.rssBytes / 1e6],
    ['server main loop lag p50 ms', stats.loopDelayMs.p50],
    ['server main loop lag p99 ms', stats.loopDelayMs.p99],
    ['server main loop lag max ms', stats.loopDelayMs.max],
    [
      'server worker loop lag p99 / max ms',
      stats.workerLoopDelayMs.length === 0
        ? '-'
        : `${Math.max(...stats.workerLoopDelayMs.map((l) => l.p99)).toFixed(1)} / ${Math.max(...stats.workerLoopDelayMs.map((l) => l.max)).toFixed(1)}`,
    ],
    ['server send: pacing spread p99 ms', percentile(serverSpread, 99)],
    ['server send: pacing spread max ms', serverSpread.at(-1) ?? Number.NaN],
    ['server send: |span − audio| max ms', absSrvSpan.at(-1) ?? Number.NaN],
    ['server RTP call→socket 1st pkt p50/max ms', `${stats.writeDelayMs.firstP50.toFixed(1)} / ${stats.writeDelayMs.firstMax.toFixed(1)}`],
    ['server RTP call→socket other pkts p99 ms', stats.writeDelayMs.restP99],
    ['replies sent (RTP bursts ≥1 s apart)', repliesSent],
    ['replies received complete', repliesReceivedFull],
    ['agent RTP packets recv/sent', `${receivedPackets}/${sentPackets}`],
    ['packets lost (sessions with loss)', `${lostTotal} (${sessionsWithLoss})`],
    ['packets late/out-of-order', lateTotal],
    ['Opus decode errors', DECODE ? decodeErrors : 'off'],
    ['arrival spread p50 ms (all pkts)', percentile(pooledSpread, 50)],
    ['arrival spread p99 ms (all pkts)', percentile(pooledSpread, 99)],
    ['arrival spread max ms', pooledSpread.at(-1) ?? Number.NaN],
    ['worst session spread p99 ms', sessionSpreadP99.at(-1) ?? Number.NaN],
    ['RFC 3550 jitter max ms', rfcJitterMax],
    ['reply dur recv−sent p50 ms (signed)', percentile([...durationErrors].sort((a, b) => a - b), 50)],
    ['reply dur recv−sent max |ms|', absDur.at(-1) ?? Number.NaN],
    ['CLEAN sessions', `${clean}/${n}`],
    ['  not clean: loss/late/spread/dur', `${dirty.loss}/${dirty.late}/${dirty.spread}/${dirty.duration}`],
    ['  not clean: no audio/decode', `${dirty.noAudio}/${dirty.decode}`],
    ['client workers CPU % each', clientCpu.map((c) => c.toFixed(0)).join(' / ')],
    ['client loop lag p99 / max ms', `${clientLagP99.toFixed(1)} / ${clientLagMax.toFixed(1)}`],
    ['client send lateness p99 ms', sendLateP99],
    ['total CPU % (server+clients, 2 cores=200)', stats.cpuPercent + clientCpu.reduce((a, b) => a + b, 0)],
  ]);

  const workerLagP99 = Math.max(0, ...stats.workerLoopDelayMs.map((l) => l.p99));
  const serverBad = stats.loopDelayMs.p99 >= CLEAN_SPREAD_MS || workerLagP99 >= CLEAN_SPREAD_MS || percentile(serverSpread, 99) >= CLEAN_SPREAD_MS;
  const clientSaturated = clientCpu.some((c) => c > 90) || clientLagP99 >= CLEAN_SPREAD_MS;
  if (clientSaturated) {
    notes.push(
      `N=${n}: CLIENT SATURATED — worker CPU ${clientCpu.map((c) => c.toFixed(0)).join('/')} %, client loop lag p99 ${clientLagP99.toFixed(1)} ms: ` +
        'arrival times at N this large include the clients\' own delay (werift DTLS/SRTP in JS); compare with the server-side pacing figures.',
    );
  }
  if (clean < n) {
    const where = serverBad && !clientSaturated ? 'server' : clientSaturated && !serverBad ? 'client' : serverBad ? 'server and client' : 'isolated late packets (neither process lags at p99)';
    notes.push(
      `N=${n}: ${n - clean} sessions not clean; server pacing spread p99 ${percentile(serverSpread, 99).toFixed(1)} ms, server lag p99 main ${stats.loopDelayMs.p99.toFixed(1)} ms / workers ${workerLagP99.toFixed(1)} ms → looks like: ${where}`,
    );
  }
  return { column, clean: clean === n, notes, profile };
}

/** The value after `flag` (or any of its aliases) on the command line, and the arguments left. */
function option(args: string[], ...flags: string[]): { value: number | undefined; rest: string[] } {
  const at = args.findIndex((a) => flags.includes(a));
  if (at < 0) return { value: undefined, rest: args };
  const value = Number(args[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${args[at]} needs a whole number, got ${String(args[at + 1])}`);
  return { value, rest: [...args.slice(0, at), ...args.slice(at + 2)] };
}

async function main(): Promise<void> {
  const server = option(process.argv.slice(2), '--webrtc-workers');
  const clients = option(server.rest, '--client-workers', '--workers');
  const webrtcWorkers = server.value;
  const workerCount = Math.max(1, clients.value ?? 2);
  const counts = clients.rest.filter((a) => !a.startsWith('--')).map(Number).filter((x) => x > 0);
  const ns = counts.length > 0 ? counts : [25, 50, 100, 150];

  console.log(`uptime: ${execSync('uptime').toString().trim()}`);
  console.log(`node ${process.version}, ${cpus().length} cores`);
  console.log(
    `bench/webrtc: N sessions × WebRTC (werift both ends, Opus 48 kHz, loopback), real Silero VAD, instant fake providers.\n` +
      `  inbound: hello.48k.wav (${(schedule.speechFrames * FRAME_MS) / 1000} s) + ${SILENCE_MS / 1000} s silence per turn, 20 ms Opus frames in real time, ` +
      `staggered; speech phase ${RUN_MS / 1000} s + ${DRAIN_MS / 1000} s drain; agent reply ${REPLY_MS / 1000} s per turn.\n` +
      `  clients in ${workerCount} worker process(es); server in its own process, WebRTC transports in ` +
      `${webrtcWorkers === undefined ? 'the default number of worker threads (one per core)' : webrtcWorkers === 0 ? 'its main thread' : `${webrtcWorkers} worker thread(s)`}; ` +
      `Opus decode on clients: ${DECODE ? 'on' : 'off'}`,
  );
  const columns: Column[] = [];
  const profiles: (Map<string, number> | undefined)[] = [];
  const notes: string[] = [];
  const allClean: number[] = [];
  for (const n of ns) {
    const started = performance.now();
    const result = await run(n, workerCount, webrtcWorkers);
    if (result.clean) allClean.push(n);
    columns.push(result.column);
    profiles.push(result.profile);
    notes.push(...result.notes);
    console.log(`  N=${n} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const metrics = [...(columns[0]?.keys() ?? [])];
  console.log(
    table(
      ['metric', ...ns.map((n) => `N=${n}`)],
      metrics.map((metric) => [metric, ...columns.map((c) => c.get(metric) ?? '')]),
    ),
  );
  console.log(
    `clean = received agent audio, 0 packets lost (sequence gaps or sent-but-never-received), 0 late/reordered/duplicate, 0 decode errors,\n` +
      `        arrival-spread p99 < ${CLEAN_SPREAD_MS} ms, and every reply's arrival span within ±${CLEAN_DURATION_MS} ms of its sent audio duration.\n` +
      `arrival spread = packet's (arrival − RTP media time) minus the smallest in its reply = lateness vs the 20 ms schedule (jitter-buffer depth needed).`,
  );
  const categories = new Map<string, number>();
  for (const p of profiles) for (const [k, v] of p ?? []) categories.set(k, Math.max(categories.get(k) ?? 0, v));
  if (categories.size > 0) {
    console.log('\nserver main thread, V8 CPU profile during the run (self time, % of wall time; --cpu-prof adds overhead):');
    const order = [...categories.entries()].sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 0.5).map(([k]) => k);
    console.log(table(['category', ...ns.map((n) => `N=${n}`)], order.map((k) => [k, ...profiles.map((p) => p?.get(k) ?? 0)])));
  }
  const highest = Math.max(0, ...allClean);
  console.log(`highest N with every session clean: ${highest === 0 ? 'none' : `N=${highest}`} (of ${ns.join(' / ')})`);
  console.log('target: ≥ 95/100 clean at N=100 on 2 cores (seed project: broke at 25, every turn failed at 50)');
  for (const note of notes) console.log(`note: ${note}`);
}

// A client process whose parent died (killed, or its output pipe closed) stops too.
if (process.argv.includes('--worker')) {
  process.once('disconnect', () => process.exit(0));
  await worker();
} else await main();
