/**
 * A WebRTC transport worker (a `worker_threads` thread started by WebRtcWorkerPool): it runs one
 * in-thread {@link WebRtcTransport} per session — werift's ICE, DTLS and SRTP, Opus encode/decode
 * and the inbound jitter buffer — and speaks webrtc-worker-messages.ts with the main thread, where
 * the sessions' machines, VAD and signalling stay.
 *
 * Outbound: a frame is sent only if this thread claims it on the session's clearOutput fence
 * (compare-exchange DECIDED from index − 1 to index); a frame the main thread withdrew is skipped.
 * Nothing is queued here: a claimed frame is encoded, encrypted and handed to the UDP socket before
 * the next message is read, so the main thread's playout clock alone decides when audio leaves.
 * Inbound: decoded 20 ms frames of every session are copied into one buffer and posted once per
 * event-loop turn.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import {
  SHARED,
  STAT_SLOTS,
  serializeError,
  type FromWorker,
  type ToWorker,
  type WorkerData,
} from './webrtc-worker-messages.js';
import { WebRtcTransport } from './webrtc.js';

const port = parentPort;
if (port === null) throw new Error('webrtc-worker.ts runs as a worker thread (WebRtcWorkerPool starts it)');

interface Session {
  readonly transport: WebRtcTransport;
  readonly shared: Int32Array;
}

const sessions = new Map<number, Session>();

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port?.postMessage(message, transfer);
}

// ---- inbound audio and stats, flushed once per event-loop turn -------------------------------

const inbound: Array<{ id: number; pcm: Int16Array }> = [];
let inboundSamples = 0;
const touched = new Set<number>();
let flushScheduled = false;

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

function flush(): void {
  flushScheduled = false;
  if (inbound.length > 0) {
    const ids = new Int32Array(inbound.length);
    const lengths = new Int32Array(inbound.length);
    const pcm = new Int16Array(inboundSamples);
    let offset = 0;
    inbound.forEach((entry, i) => {
      ids[i] = entry.id;
      lengths[i] = entry.pcm.length;
      pcm.set(entry.pcm, offset);
      offset += entry.pcm.length;
    });
    inbound.length = 0;
    inboundSamples = 0;
    post({ type: 'audio', batch: { ids, lengths, pcm } }, [ids.buffer, lengths.buffer, pcm.buffer]);
  }
  for (const id of touched) publishStats(id);
  touched.clear();
}

function publishStats(id: number): void {
  const session = sessions.get(id);
  if (session === undefined) return;
  const stats = session.transport.stats;
  for (const slot of STAT_SLOTS) Atomics.store(session.shared, SHARED[slot], stats[slot]);
}

// ---- sessions ---------------------------------------------------------------------------------

function open(message: Extract<ToWorker, { type: 'open' }>): void {
  const { id } = message;
  // The session's lines go to the main thread, which logs them with the session's own logger.
  const logger = pino({ level: message.logLevel, base: null, timestamp: false }, { write: (line: string) => post({ type: 'log', id, line }) });
  const transport = new WebRtcTransport({ ...message.options, logger });
  const session: Session = { transport, shared: new Int32Array(message.shared) };
  sessions.set(id, session);
  transport.onAudio((pcm) => {
    // The decoder's output is a view on its own reused buffer: copy it now.
    inbound.push({ id, pcm: pcm.slice() });
    inboundSamples += pcm.length;
    touched.add(id);
    scheduleFlush();
  });
  transport.onIceCandidate((candidate) => post({ type: 'candidate', id, candidate }));
  transport.onConnectionStateChange((state) => {
    post({ type: 'state', id, state });
    touched.add(id);
    scheduleFlush();
  });
  transport.onError((error) => post({ type: 'error', id, error: serializeError(error) }));
  transport.onClosed((info) => {
    publishStats(id);
    sessions.delete(id);
    if (info.reason !== 'closed') {
      post({ type: 'ended', id, reason: info.reason, ...(info.error === undefined ? {} : { error: serializeError(info.error) }) });
    }
  });
}

function frames(message: Extract<ToWorker, { type: 'frames' }>): void {
  const { ids, indices, lengths, pcm } = message.batch;
  const claimedBy = new Set<Session>();
  let offset = 0;
  for (let i = 0; i < ids.length; i++) {
    const length = lengths[i] as number;
    const frame = pcm.subarray(offset, offset + length);
    offset += length;
    const id = ids[i] as number;
    const session = sessions.get(id);
    const index = indices?.[i];
    if (session === undefined || index === undefined) continue;
    // Claim it; if clearOutput already moved the fence past it, it was withdrawn: skip.
    const claimed = Atomics.compareExchange(session.shared, SHARED.DECIDED, index - 1, index) === index - 1;
    claimedBy.add(session);
    if (!claimed) continue;
    session.transport.sendAudio(frame);
    touched.add(id);
  }
  // A clearOutput may be waiting for these frames to be settled.
  for (const session of claimedBy) Atomics.notify(session.shared, SHARED.DECIDED);
  if (touched.size > 0) scheduleFlush();
}

async function request(id: number, requestId: number, run: (transport: WebRtcTransport) => Promise<string | undefined>): Promise<void> {
  const session = sessions.get(id);
  try {
    if (session === undefined) throw new Error('the transport is closed');
    const value = await run(session.transport);
    post({ type: 'result', id, request: requestId, ...(value === undefined ? {} : { value }) });
  } catch (error) {
    post({ type: 'result', id, request: requestId, error: serializeError(error) });
  }
}

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'open':
      open(message);
      return;
    case 'frames':
      frames(message);
      return;
    case 'offer':
      void request(message.id, message.request, (transport) => transport.handleOffer(message.sdp, { trickle: message.trickle }));
      return;
    case 'ice':
      void request(message.id, message.request, async (transport) => {
        await transport.addIceCandidate(message.candidate);
        return undefined;
      });
      return;
    case 'clear':
      sessions.get(message.id)?.transport.clearOutput();
      return;
    case 'close': {
      const session = sessions.get(message.id);
      const closing = session === undefined ? Promise.resolve() : session.transport.close();
      void closing.then(() => post({ type: 'closed', id: message.id }));
      return;
    }
  }
}

const data = workerData as WorkerData;
for (const url of data.preload) await import(url);
port.on('message', handle);
post({ type: 'ready' });
