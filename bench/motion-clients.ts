/**
 * The client side of bench/motion: N avatar clients on loopback, each one WebSocket to the
 * VoiceServer, in a process of their own (as browsers would be), forked by the bench with IPC.
 *
 * Each client says hello, asks for a reply (`user.text`) and asks again whenever one ends, until the
 * bench says stop. It notes when each `avatar.frames` message arrives (the system's monotonic clock,
 * relative to BENCH_CLOCK_BASE, like the Motion Server's send times) under its conversation id (the
 * req_id), in order, and how many keyframes per second of wall time it received.
 *
 *   env BENCH_URL, BENCH_SESSIONS
 *   parent → child {type:'stop'} → child → parent {type:'received', sessions: [{conversations, times, buckets}]}
 */
import WebSocket from 'ws';

const BASE = BigInt(process.env['BENCH_CLOCK_BASE'] ?? '0');
const now = (): number => Number(process.hrtime.bigint() - BASE) / 1e6;
const URL_ = process.env['BENCH_URL'] ?? '';
const SESSIONS = Number(process.env['BENCH_SESSIONS'] ?? '100');

interface ClientRecord {
  /** Per conversation id, the arrival times of its avatar.frames messages. */
  readonly received: Map<string, number[]>;
  /** Keyframes received per wall-clock second (index: seconds since the bench's start). */
  readonly buckets: number[];
  errors: number;
}

const records: ClientRecord[] = [];
const sockets: WebSocket[] = [];
let stopping = false;

function open(index: number): Promise<void> {
  const record: ClientRecord = { received: new Map(), buckets: [], errors: 0 };
  records[index] = record;
  const socket = new WebSocket(URL_, { perMessageDeflate: false });
  sockets.push(socket);
  const ask = (): void => {
    if (!stopping && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'user.text', text: 'talk to me' }));
  };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', sampleRate: 16000, format: 'pcm16' } }));
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return; // the agent's audio: played by a real client, ignored here
      const at = now();
      const text = String(data);
      // Only the relay's messages are timed; a cheap prefix test keeps the rest off the hot path.
      if (text.startsWith('{"type":"avatar.frames"')) {
        const message = JSON.parse(text) as { conversationId: string; frames: string[] };
        let times = record.received.get(message.conversationId);
        if (times === undefined) record.received.set(message.conversationId, (times = []));
        for (let i = 0; i < message.frames.length; i += 1) times.push(at);
        const second = Math.floor(at / 1000);
        record.buckets[second] = (record.buckets[second] ?? 0) + message.frames.length;
        return;
      }
      // The rest is read only as far as the bench needs it: parsing every message would load this
      // process (and so the two cores the server shares with it) for nothing.
      if (text.startsWith('{"type":"session.ready"')) {
        resolve();
        ask();
      } else if (text.startsWith('{"type":"reply.done"')) {
        ask();
      } else if (text.startsWith('{"type":"error"')) {
        record.errors += 1;
      }
    });
  });
}

await Promise.all(Array.from({ length: SESSIONS }, (_, i) => open(i)));
process.send?.({ type: 'ready' });

process.on('message', (message: { type: string }) => {
  if (message.type !== 'stop') return;
  stopping = true;
  process.send?.({
    type: 'received',
    sessions: records.map((r) => ({
      conversations: [...r.received.keys()],
      times: [...r.received.values()],
      buckets: Array.from(r.buckets, (n) => n ?? 0),
      errors: r.errors,
    })),
  });
  for (const socket of sockets) socket.close();
  setTimeout(() => process.exit(0), 200).unref();
});
