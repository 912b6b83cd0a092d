/**
 * The measuring probe of bench/webrtc-server.ts, loaded into every thread that sends RTP: each
 * WebRTC transport worker (WebRtcWorkerPool `preload`) and the server's main thread (where the
 * transports run with `webrtc.workers: 0`).
 *
 * It wraps `RTCDtlsTransport.prototype.sendRtp` (werift) in its own thread to timestamp every
 * outbound RTP packet with its final SSRC / sequence number just before SRTP encryption and the UDP
 * send, and it measures its thread: CPU time (Linux: /proc/thread-self/stat, 10 ms ticks), event-loop
 * utilization (busy share of wall time) and event-loop delay. Worker probes answer over a BroadcastChannel; the main thread calls `report()` directly.
 * Nothing in src/ is changed.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import { RTCDtlsTransport, type RtpHeader } from 'werift';
import { percentile } from './stats.js';

export const PROBE_CHANNEL = 'voxstate-bench-webrtc-probe';

/** A reply as it left: consecutive packets of one SSRC less than REPLY_GAP_MS apart. */
interface SentSpurt {
  firstSeq: number;
  packets: number;
  firstSentMs: number;
  lastSentMs: number;
  /** Send time minus the packet's slot on a continuous 20 ms schedule from the reply's first packet (ms). */
  transit: number[];
}

export interface SentSpurtSummary {
  readonly firstSeq: number;
  readonly packets: number;
  /** Last send − first send + 20 ms: how long the reply took to leave the server. */
  readonly sendSpanMs: number;
  readonly spreadP99Ms: number;
  readonly spreadMaxMs: number;
  /** All per-packet spreads against the 20 ms schedule anchored at the earliest packet, 0.1 ms resolution. */
  readonly spreads: number[];
}

export interface ProbeReport {
  readonly threadId: number;
  readonly mainThread: boolean;
  readonly streams: Record<string, SentSpurtSummary[]>;
  /** Wall-clock time (ms since the epoch) of this thread's last RTP send; 0 if none. */
  readonly lastSendEpochMs: number;
  readonly writeDelayFirst: number[];
  readonly writeDelayRest: number[];
  /** Share of wall time this thread's event loop was busy since the reset, 0–1. */
  readonly utilization: number;
  /** CPU time of this thread since the reset in % of wall time (1 core = 100); undefined without /proc. */
  readonly cpuPercent: number | undefined;
  /** Garbage collection pauses of this thread's heap since the reset: total ms per second of wall time, longest ms. */
  readonly gc: { readonly msPerS: number; readonly maxMs: number };
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

export type ProbeRequest = { readonly type: 'reset' } | { readonly type: 'collect'; readonly id: number };
export type ProbeReply = { readonly type: 'report'; readonly id: number; readonly report: ProbeReport };

const REPLY_GAP_MS = 1_000;
const streams = new Map<number, SentSpurt[]>();
const writeDelayFirst: number[] = [];
const writeDelayRest: number[] = [];
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
let elu = performance.eventLoopUtilization();

/** This thread's user + system CPU time in ms (Linux), from its own /proc entry. */
function threadCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3. USER_HZ is 100.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}
let cpuAt = { cpuMs: threadCpuMs(), wallMs: performance.now() };
const gc = { totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.totalMs += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });
let recording = false;
let lastSendMs = 0;

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

function summarize(spurt: SentSpurt): SentSpurtSummary {
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

function cpuPercentSinceReset(): number | undefined {
  const now = threadCpuMs();
  if (now === undefined || cpuAt.cpuMs === undefined) return undefined;
  return ((now - cpuAt.cpuMs) / Math.max(1, performance.now() - cpuAt.wallMs)) * 100;
}

export function reset(): void {
  streams.clear();
  writeDelayFirst.length = 0;
  writeDelayRest.length = 0;
  loop.reset();
  elu = performance.eventLoopUtilization();
  cpuAt = { cpuMs: threadCpuMs(), wallMs: performance.now() };
  gc.totalMs = 0;
  gc.maxMs = 0;
  recording = true;
}

export function report(): ProbeReport {
  const out: Record<string, SentSpurtSummary[]> = {};
  for (const [ssrc, spurts] of streams) out[String(ssrc)] = spurts.map(summarize);
  // The histogram measures whole timer periods; the lag is what exceeds the 1 ms period.
  const lag = (ns: number): number => Math.max(0, ns / 1e6 - 1);
  return {
    threadId,
    mainThread: isMainThread,
    streams: out,
    lastSendEpochMs: lastSendMs === 0 ? 0 : performance.timeOrigin + lastSendMs,
    writeDelayFirst: [...writeDelayFirst],
    writeDelayRest: [...writeDelayRest],
    utilization: performance.eventLoopUtilization(elu).utilization,
    cpuPercent: cpuPercentSinceReset(),
    gc: { msPerS: (gc.totalMs / Math.max(1, performance.now() - cpuAt.wallMs)) * 1000, maxMs: gc.maxMs },
    loopDelayMs: { p50: lag(loop.percentile(50)), p99: lag(loop.percentile(99)), max: lag(loop.max) },
  };
}

if (!isMainThread) {
  const channel = new BroadcastChannel(PROBE_CHANNEL);
  channel.unref();
  channel.onmessage = (event) => {
    const request = (event as { data: ProbeRequest }).data;
    if (request.type === 'reset') reset();
    else channel.postMessage({ type: 'report', id: request.id, report: report() } satisfies ProbeReply);
  };
}
