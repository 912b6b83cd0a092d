/**
 * The server side of bench/webrtc: a VoiceServer with WebRTC on loopback, real Silero VAD and
 * instant fake providers (a 20-word reply, 150 ms per word = 3.0 s of agent audio per turn), plus
 *
 *   POST /bench/reset     restart the CPU / event-loop / turn / RTP-send counters
 *   GET  /bench/stats     event-loop lag, CPU, RSS, completed turns
 *   GET  /bench/senders   per outbound RTP stream (SSRC): its talkspurts (one per agent reply) with
 *                         packets sent, send span and pacing spread — what left the server, to hold
 *                         against what each client received
 *
 * Started as a child process by bench/webrtc.ts so the clients' work is not counted against it.
 *
 * Measurement hook: `RTCDtlsTransport.prototype.sendRtp` (werift) is wrapped in this process only,
 * to timestamp every outbound RTP packet with its final SSRC / sequence number / RTP timestamp just
 * before SRTP encryption and the UDP send. Nothing in src/ is changed.
 */
import { RTCDtlsTransport, type RtpHeader } from 'werift';
import { FakeLlm, FakeStt, FakeTts } from '../src/providers/fake/index.js';
import { VoiceServer } from '../src/server/index.js';
import { ProcessMeter } from './process-meter.js';
import { percentile } from './stats.js';

const REPLY_TEXT = 'Sure, I can help with that. Your table for two is booked for tomorrow at seven, see you both then.';
const MS_PER_WORD = 150;

const meter = new ProcessMeter();
let turns = 0;
let interruptedTurns = 0;

/**
 * One agent reply as it left the server: consecutive outbound packets of one SSRC with less than
 * REPLY_GAP_MS between sends (replies are seconds apart, the user speaks in between).
 */
interface SentSpurt {
  firstSeq: number;
  packets: number;
  firstSentMs: number;
  lastSentMs: number;
  /** Send time minus the packet's slot on a continuous 20 ms schedule from the reply's first packet (ms). */
  transit: number[];
}

const REPLY_GAP_MS = 1_000;
let recording = false;
let lastSendMs = 0;
const streams = new Map<number, SentSpurt[]>();

type SendRtp = (this: RTCDtlsTransport, payload: Buffer, header: RtpHeader) => Promise<number>;
const originalSendRtp = RTCDtlsTransport.prototype.sendRtp as SendRtp;
RTCDtlsTransport.prototype.sendRtp = function sendRtp(this: RTCDtlsTransport, payload: Buffer, header: RtpHeader): Promise<number> {
  if (!recording) return originalSendRtp.call(this, payload, header);
  const calledAt = (lastSendMs = performance.now());
  const first = record(header.ssrc, header.sequenceNumber, calledAt);
  const sent = originalSendRtp.call(this, payload, header);
  // The promise settles once the datagram was handed to the socket: the delay after the JS call.
  void sent.then(() => (first ? writeDelayFirst : writeDelayRest).push(performance.now() - calledAt));
  return sent;
};
const writeDelayFirst: number[] = [];
const writeDelayRest: number[] = [];

/** Returns true for the first packet of a reply. */
function record(ssrc: number, seq: number, now: number): boolean {
  let spurts = streams.get(ssrc);
  if (spurts === undefined) {
    spurts = [];
    streams.set(ssrc, spurts);
  }
  const last = spurts.at(-1);
  if (last !== undefined && now - last.lastSentMs <= REPLY_GAP_MS) {
    last.packets++;
    last.lastSentMs = now;
    last.transit.push(now - ((seq - last.firstSeq) & 0xffff) * 20);
    return false;
  }
  spurts.push({ firstSeq: seq, packets: 1, firstSentMs: now, lastSentMs: now, transit: [now] });
  return true;
}

export interface SentSpurtSummary {
  readonly firstSeq: number;
  readonly packets: number;
  /** Last send − first send + 20 ms: how long the reply took to leave the server. */
  readonly sendSpanMs: number;
  /** Per-packet lateness against the 20 ms schedule anchored at the earliest packet (ms), sorted values' p99 and max. */
  readonly spreadP99Ms: number;
  readonly spreadMaxMs: number;
  /** All per-packet spreads, rounded to 0.1 ms, for pooled percentiles. */
  readonly spreads: number[];
}

function summarizeSpurt(spurt: SentSpurt): SentSpurtSummary {
  const min = Math.min(...spurt.transit);
  const spreads = spurt.transit.map((t) => Math.round((t - min) * 10) / 10).sort((a, b) => a - b);
  return {
    firstSeq: spurt.firstSeq,
    packets: spurt.packets,
    sendSpanMs: spurt.lastSentMs - spurt.firstSentMs + 20,
    spreadP99Ms: percentile(spreads, 99),
    spreadMaxMs: spreads.at(-1) ?? 0,
    spreads,
  };
}

const server = new VoiceServer({
  port: 0,
  providers: {
    stt: new FakeStt({ recognize: () => 'hello there how are you today' }),
    llm: new FakeLlm({ respond: () => [process.env['BENCH_REPLY'] ?? REPLY_TEXT] }),
    tts: new FakeTts({ sampleRate: 16_000, msPerWord: Number(process.env['BENCH_MS_PER_WORD'] ?? MS_PER_WORD) }),
  },
  webrtcHostAddresses: ['127.0.0.1'],
  session: { limits: { maxSessions: 10_000, maxPerIp: 10_000, maxPerPrincipal: 10_000 } },
  maxMessagesPerSecond: 1_000,
  hooks: {
    onTurnEnd: (m) => {
      turns++;
      if (m.interrupted) interruptedTurns++;
    },
  },
});

/** Monotonic µs (the clock of V8's .cpuprofile timestamps) at the last reset: the measured window. */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);
let windowStartUs = monotonicUs();
server.route('POST', '/bench/reset', (_req, res) => {
  meter.reset();
  windowStartUs = monotonicUs();
  turns = 0;
  interruptedTurns = 0;
  streams.clear();
  writeDelayFirst.length = 0;
  writeDelayRest.length = 0;
  recording = true;
  res.end('{}');
});
server.route('GET', '/bench/stats', (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      sessions: server.sessions,
      turns,
      interruptedTurns,
      ...meter.figures(),
      window: { startUs: windowStartUs, endUs: monotonicUs() },
      /** Time since the last agent RTP packet left (replies still playing out when > 0 and small). */
      rtpIdleMs: performance.now() - lastSendMs,
      /** RTP send call → datagram handed to the socket (ms): first packet of each reply vs the rest. */
      writeDelayMs: {
        firstP50: percentile([...writeDelayFirst].sort((a, b) => a - b), 50),
        firstMax: Math.max(0, ...writeDelayFirst),
        restP99: percentile([...writeDelayRest].sort((a, b) => a - b), 99),
      },
    }),
  );
});
server.route('GET', '/bench/senders', (_req, res) => {
  const out: Record<string, SentSpurtSummary[]> = {};
  for (const [ssrc, spurts] of streams) out[String(ssrc)] = spurts.map(summarizeSpurt);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(out));
});

const address = await server.start();
process.send?.({ url: address.url, port: address.port });
process.on('message', (message) => {
  if (message === 'stop') void server.stop().then(() => process.exit(0));
});
