/**
 * The server side of bench/sessions: a VoiceServer with real VAD and instant fake providers, plus a
 * /bench/stats route reporting event-loop lag, CPU, memory and completed turns. Started as a child
 * process by bench/sessions.ts so the clients' work is not counted against it.
 */
import { WebSocket } from 'ws';
import { FakeLlm, FakeStt, FakeTts } from '../src/providers/fake/index.js';
import { VoiceServer } from '../src/server/index.js';
import { ProcessMeter } from './process-meter.js';

// Egress timing: when each binary (audio) frame leaves the server, per socket. Measurement only.
const egress = new Map<WebSocket, { first: number; last: number; frames: number }>();
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
  if (typeof data !== 'string') {
    const now = performance.now();
    const entry = egress.get(this);
    if (entry === undefined) egress.set(this, { first: now, last: now, frames: 1 });
    else {
      entry.last = now;
      entry.frames++;
    }
  }
  return (send as (...args: unknown[]) => void).call(this, data, ...rest);
} as typeof WebSocket.prototype.send;

const meter = new ProcessMeter();
let turns = 0;


const server = new VoiceServer({
  port: 0,
  providers: {
    stt: new FakeStt({ recognize: () => 'hello there how are you today' }),
    // Instant providers: the first token and the first audio chunk come at once; the rest streams
    // faster than real time (LLM 500 tokens/s, TTS 100 ms of audio every 5 ms = 20× real time), as
    // fast real providers do. (A fake that produced a whole reply in one go would never yield to the
    // event loop and measure the fake, not the runtime.)
    llm: new FakeLlm({ respond: () => [process.env['BENCH_REPLY'] ?? 'I am fine, thank you.'], tokenIntervalMs: 2 }),
    tts: new FakeTts({ sampleRate: 16_000, msPerWord: Number(process.env['BENCH_MS_PER_WORD'] ?? 150), chunkIntervalMs: 5 }),
  },
  session: { limits: { maxSessions: 10_000, maxPerIp: 10_000, maxPerPrincipal: 10_000 } },
  maxMessagesPerSecond: 1_000,
  hooks: { onTurnEnd: () => void turns++ },
});

server.route('POST', '/bench/reset', (_req, res) => {
  meter.reset();
  turns = 0;
  egress.clear();
  res.end('{}');
});
server.route('GET', '/bench/egress', (_req, res) => {
  res.setHeader('content-type', 'application/json');
  // Per socket: how long its frames took to leave, minus how much audio they carried.
  res.end(JSON.stringify([...egress.values()].map((e) => e.last + 20 - e.first - e.frames * 20)));
});
server.route('GET', '/bench/stats', (_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ sessions: server.sessions, turns, ...meter.figures() }));
});

const address = await server.start();
process.send?.({ url: address.url, port: address.port });
process.on('message', (message) => {
  if (message === 'stop') void server.stop().then(() => process.exit(0));
});
