/**
 * The Motion Server side of bench/motion: the local Motion Server in a process of its own (as a hosted
 * one would be elsewhere), forked by the bench with an IPC channel.
 *
 * Side channel for the relay latency. Animation envelopes are relayed byte for byte, so their send
 * times cannot ride inside them; instead a bench-only wrapper around `ws`'s send — nothing in src/
 * knows of it — notes, per req_id, when its k-th animation envelope is handed to the socket. Times
 * are read from the system's monotonic clock (process.hrtime, CLOCK_MONOTONIC, the same in every
 * process on the machine) relative to BENCH_CLOCK_BASE, which the bench passes to all its processes.
 * After the run the bench asks for the table ('collect'), so the channel costs nothing while it runs.
 *
 *   parent → child  {type:'collect'}              child → parent  {type:'listening', consoleEndpointUrl, ingressEndpointUrl}
 *   parent → child  {type:'stop'}                                 {type:'sent', reqIds, times}
 */
import { WebSocket } from 'ws';
import { LocalMotionServer } from '../src/motion/local-server/index.js';
import { MESSAGE_TYPE, peekEnvelope } from '../src/motion/protocol/index.js';

const BASE = BigInt(process.env['BENCH_CLOCK_BASE'] ?? '0');
const now = (): number => Number(process.hrtime.bigint() - BASE) / 1e6;

/** Per req_id: the send time (ms since BASE) of each animation envelope, in order. */
const sent = new Map<string, number[]>();

const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
  const at = now();
  if (data instanceof Uint8Array) {
    const peek = peekEnvelope(data);
    const reqId = peek.animation?.reqId;
    if (peek.type === MESSAGE_TYPE.serverResponseAnimation && reqId !== undefined) {
      let times = sent.get(reqId);
      if (times === undefined) sent.set(reqId, (times = []));
      times.push(at);
    }
  }
  return (send as (...args: unknown[]) => void).call(this, data, ...rest);
} as typeof WebSocket.prototype.send;

const server = new LocalMotionServer();
const info = await server.start({ port: 0, host: '127.0.0.1', apiKey: process.env['BENCH_MOTION_KEY'] ?? 'bench-key', appId: 'bench' });
process.send?.({ type: 'listening', consoleEndpointUrl: info.consoleEndpointUrl, ingressEndpointUrl: info.ingressEndpointUrl });

process.on('message', (message: { type: string }) => {
  if (message.type === 'collect') {
    process.send?.({ type: 'sent', reqIds: [...sent.keys()], times: [...sent.values()] });
  } else if (message.type === 'stop') {
    void server.stop().then(() => process.exit(0));
  }
});
