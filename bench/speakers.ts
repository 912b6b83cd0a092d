/**
 * The client side of bench/sessions and bench/soak: N websocket sessions that each talk like a person
 * on a call — the hello.16k.wav utterance, then 1.6 s of silence (the VAD's end of turn and the agent's
 * reply fit in it), over and over — streamed as 20 ms PCM16 frames in real time.
 *
 * Sessions are spread out twice over: session i first sends (i / N) of a cycle of silence, so
 * utterances do not start together, and its frames go out at its own phase within each 20 ms
 * (i / N × 20 ms), as independent microphones do (frames of all sessions in lockstep would reach the
 * server's VAD as ready-made full batches, which live audio never does).
 *
 * Turn accounting is exact, per session: utterance j of session i covers stream frames
 * [lead_i + j·C, lead_i + j·C + S) (C frames a cycle, S of speech). The VAD reports `vad.speech_start`
 * with `atMs` in that same stream time (0 = the first sample the session sent), so each onset names its
 * utterance; a reply belongs to the utterance of the last onset before its first message. An utterance
 * is expected once its whole cycle was sent; it is completed when one of its replies ended whole
 * (`reply.done`, not interrupted); it is split when it got more than one reply (the runtime ended the
 * turn inside the utterance, and the rest became another turn).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { float32ToInt16 } from '../src/audio/frame.js';
import { readWav } from '../src/audio/wav.js';

export const RATE = 16_000;
export const FRAME = 320; // 20 ms at 16 kHz
export const FRAME_MS = 20;

export const wallNow = (): number => performance.timeOrigin + performance.now();

export interface SpeechCycle {
  /** One cycle of PCM16: the utterance, then silence; a whole number of frames. */
  readonly pcm: Int16Array;
  /** Frames of the cycle up to the end of the utterance's last frame. */
  readonly speechFrames: number;
  readonly cycleFrames: number;
}

/** hello.16k.wav, then 1.6 s of silence. */
export function helloCycle(silenceMs = 1_600): SpeechCycle {
  const wav = readWav(new Uint8Array(readFileSync(fileURLToPath(new URL('../test/fixtures/hello.16k.wav', import.meta.url)))));
  const speech = float32ToInt16(wav.samples);
  const speechFrames = Math.ceil(speech.length / FRAME);
  const cycleFrames = speechFrames + Math.ceil((RATE * silenceMs) / 1000 / FRAME);
  const pcm = new Int16Array(cycleFrames * FRAME);
  pcm.set(speech);
  return { pcm, speechFrames, cycleFrames };
}

const SILENCE = new Int16Array(FRAME);

interface Reply {
  readonly utterance: number;
  done: boolean;
  interrupted: boolean;
}

export class Speaker {
  readonly ws: WebSocket;
  /** Our local port: the server sees it as the socket's remote port (the side channel's key). */
  readonly port: number;
  readonly leadFrames: number;
  readonly phaseMs: number;
  readonly #cycle: SpeechCycle;
  /** Frames sent so far (the next frame's index in the stream). */
  sent = 0;
  /** When each frame was handed to ws.send() (wall ms), if recorded. */
  sentAt: Float64Array | undefined;
  /** Onsets per utterance. */
  readonly onsets = new Map<number, number>();
  readonly replies = new Map<string, Reply>();
  #lastUtterance = -1;
  errors = 0;

  private constructor(ws: WebSocket, cycle: SpeechCycle, leadFrames: number, phaseMs: number, recordFrames: number) {
    this.ws = ws;
    this.port = (ws as unknown as { _socket: { localPort: number } })._socket.localPort;
    this.#cycle = cycle;
    this.leadFrames = leadFrames;
    this.phaseMs = phaseMs;
    if (recordFrames > 0) this.sentAt = new Float64Array(recordFrames);
    ws.on('message', (data, binary) => {
      if (!binary) this.#onMessage(String(data));
    });
  }

  /** Opens a session and waits for `session.ready`. `recordFrames`: how many send times to keep (0 = none). */
  static async connect(url: string, cycle: SpeechCycle, options: { leadFrames: number; phaseMs: number; recordFrames: number }): Promise<Speaker> {
    // A zero mask (allowed by RFC 6455; masking protects browsers' proxies, not a bench) lets ws send
    // each frame without copying and XOR-ing it: less work for the load generator, which shares the
    // cores with the server. The server unmasks as always.
    const ws = new WebSocket(url, { perMessageDeflate: false, generateMask: (mask) => void mask.fill(0) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const speaker = new Speaker(ws, cycle, options.leadFrames, options.phaseMs, options.recordFrames);
    const ready = new Promise<void>((resolve) => {
      const onMessage = (data: WebSocket.RawData, binary: boolean): void => {
        if (binary || !String(data).startsWith('{"type":"session.ready"')) return;
        ws.off('message', onMessage);
        resolve();
      };
      ws.on('message', onMessage);
    });
    ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: RATE } }));
    await ready;
    return speaker;
  }

  /** The utterance that stream frame `frame` belongs to (−1 in the lead silence). */
  utteranceOf(frame: number): number {
    return frame < this.leadFrames ? -1 : Math.floor((frame - this.leadFrames) / this.#cycle.cycleFrames);
  }

  /** Sends the next frame of the stream. */
  sendNext(): void {
    const k = this.sent;
    let frame: Int16Array = SILENCE;
    if (k >= this.leadFrames) {
      const p = (k - this.leadFrames) % this.#cycle.cycleFrames;
      frame = this.#cycle.pcm.subarray(p * FRAME, (p + 1) * FRAME);
    }
    if (this.sentAt !== undefined && k < this.sentAt.length) this.sentAt[k] = wallNow();
    this.ws.send(frame);
    this.sent = k + 1;
  }

  /** Utterances whose whole cycle has been sent. */
  get utterancesSent(): number {
    return Math.max(0, Math.floor((this.sent - this.leadFrames) / this.#cycle.cycleFrames));
  }

  /** Ends the session (not just the socket: a dropped socket would leave it waiting for a resume). */
  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    this.ws.send(JSON.stringify({ type: 'session.close', reason: 'bench done' }));
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    if ((this.ws.readyState as number) !== WebSocket.CLOSED) this.ws.terminate();
  }

  #onMessage(text: string): void {
    // Only the few message types the accounting needs are parsed.
    if (text.startsWith('{"type":"vad.speech_start"')) {
      const { atMs } = JSON.parse(text) as { atMs: number };
      const utterance = this.utteranceOf(Math.floor(atMs / FRAME_MS));
      this.#lastUtterance = utterance;
      this.onsets.set(utterance, (this.onsets.get(utterance) ?? 0) + 1);
    } else if (text.startsWith('{"type":"reply.')) {
      const { type, replyId, interrupted } = JSON.parse(text) as { type: string; replyId?: string; interrupted?: boolean };
      if (replyId === undefined) return;
      let reply = this.replies.get(replyId);
      if (reply === undefined) this.replies.set(replyId, (reply = { utterance: this.#lastUtterance, done: false, interrupted: false }));
      if (type === 'reply.done') {
        reply.done = true;
        reply.interrupted = interrupted === true;
      }
    } else if (text.startsWith('{"type":"error"')) this.errors++;
  }
}

export interface TurnCounts {
  /** Utterances whose whole cycle was sent. */
  expected: number;
  /** …of which one reply ended whole. */
  completed: number;
  /** …of which more than one reply started (the turn was split). */
  split: number;
  /** …that got no reply at all. */
  missed: number;
  /** Replies that started (to counted utterances), and the ones interrupted (a split's first part, usually). */
  replies: number;
  interrupted: number;
  /** Error messages the sessions received. */
  errors: number;
}

export function countTurns(speakers: readonly Speaker[]): TurnCounts {
  const counts: TurnCounts = { expected: 0, completed: 0, split: 0, missed: 0, replies: 0, interrupted: 0, errors: 0 };
  for (const s of speakers) {
    const expected = s.utterancesSent;
    counts.expected += expected;
    counts.errors += s.errors;
    const perUtterance = new Map<number, Reply[]>();
    for (const reply of s.replies.values()) {
      if (reply.utterance < 0 || reply.utterance >= expected) continue;
      const list = perUtterance.get(reply.utterance) ?? [];
      list.push(reply);
      perUtterance.set(reply.utterance, list);
    }
    for (let j = 0; j < expected; j++) {
      const replies = perUtterance.get(j) ?? [];
      counts.replies += replies.length;
      counts.interrupted += replies.filter((r) => r.interrupted).length;
      if (replies.length === 0) counts.missed++;
      if (replies.length > 1) counts.split++;
      if (replies.some((r) => r.done && !r.interrupted)) counts.completed++;
    }
  }
  return counts;
}

/** Opens `n` speakers, `parallel` at a time, spread over one cycle and over the 20 ms frame period. */
export async function openSpeakers(url: string, n: number, cycle: SpeechCycle, recordFrames: number, parallel = 16): Promise<Speaker[]> {
  const speakers: Speaker[] = new Array<Speaker>(n);
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, n - i) }, async (_, k) => {
        const index = i + k;
        speakers[index] = await Speaker.connect(url, cycle, {
          leadFrames: Math.floor((index * cycle.cycleFrames) / n),
          phaseMs: (index * FRAME_MS) / n,
          recordFrames,
        });
      }),
    );
  }
  return speakers;
}

export interface DriveResult {
  /** When the run started, wall ms (frames sent from then on are the run's). */
  readonly startWallMs: number;
  /** How late the client handed frames to ws.send(), ms after their slot: is the load generator keeping up? */
  readonly sendLate: { p50: number; p99: number; max: number };
}

/**
 * Streams every speaker's frames in real time for `durationMs`, each frame k of speaker i at
 * start + phase_i + k × 20 ms (all speakers start at frame 0 of their own stream). `every` is called
 * about every `everyMs` (the soak samples the server there).
 */
export async function drive(speakers: readonly Speaker[], durationMs: number, options: { everyMs?: number; every?: (elapsedMs: number) => Promise<void> | void } = {}): Promise<DriveResult> {
  const totalFrames = Math.floor(durationMs / FRAME_MS);
  const start = performance.now();
  const startWallMs = wallNow();
  // Lateness histogram in 0.1 ms bins up to 1 s (the soak sends millions of frames).
  const bins = new Uint32Array(10_001);
  let count = 0;
  let max = 0;
  let nextEvery = options.everyMs ?? Infinity;
  let busy = false;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      let done = true;
      for (const s of speakers) {
        while (s.sent < totalFrames) {
          const due = start + s.phaseMs + s.sent * FRAME_MS;
          if (due > now) break;
          s.sendNext();
          const late = now - due;
          bins[Math.min(bins.length - 1, Math.round(late * 10))]!++;
          count++;
          if (late > max) max = late;
        }
        if (s.sent < totalFrames) done = false;
      }
      const elapsed = now - start;
      if (options.every !== undefined && elapsed >= nextEvery && !busy) {
        nextEvery += options.everyMs ?? Infinity;
        busy = true;
        void Promise.resolve(options.every(elapsed)).finally(() => (busy = false));
      }
      if (done) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const quantile = (q: number): number => {
    let seen = 0;
    for (let b = 0; b < bins.length; b++) {
      seen += bins[b]!;
      if (seen >= q * count) return b / 10;
    }
    return max;
  };
  return { startWallMs, sendLate: { p50: quantile(0.5), p99: quantile(0.99), max } };
}

/**
 * This process's wall clock → the server's: the offset of the round trip with the smallest RTT
 * (the server's clock read is in its middle to within RTT / 2).
 */
export async function clockOffset(base: string, rounds = 20): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best = { offsetMs: 0, uncertaintyMs: Infinity };
  for (let i = 0; i < rounds; i++) {
    const t0 = wallNow();
    const { wallMs } = (await (await fetch(`${base}/bench/clock`)).json()) as { wallMs: number };
    const t1 = wallNow();
    if ((t1 - t0) / 2 < best.uncertaintyMs) best = { offsetMs: wallMs - (t0 + t1) / 2, uncertaintyMs: (t1 - t0) / 2 };
  }
  return best;
}

/** Starts bench/sessions-server.ts in its own process. */
export async function startSessionsServer(options: { env?: Record<string, string>; execArgv?: readonly string[] } = {}): Promise<{ url: string; base: string; stop: () => Promise<void> }> {
  const { fork } = await import('node:child_process');
  const profile = process.env['BENCH_CPU_PROF'];
  const child = fork(fileURLToPath(new URL('./sessions-server.ts', import.meta.url)), [], {
    // BENCH_CPU_PROF=<dir>: a V8 CPU profile of the server process goes there (node --cpu-prof).
    execArgv: ['--import', 'tsx', ...(options.execArgv ?? []), ...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`])],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const info = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; port: number }));
    child.once('exit', (code) => reject(new Error(`sessions-server exited with ${code}`)));
  });
  return {
    url: info.url,
    base: `http://127.0.0.1:${info.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
  };
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  return (await (await fetch(url, init)).json()) as T;
}
