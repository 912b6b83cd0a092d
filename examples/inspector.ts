/**
 * Library mode with the live inspector and Prometheus metrics on: open /inspect in a browser to
 * see every session as the statechart it is, /metrics for the series a scraper reads.
 *
 *   npx tsx examples/inspector.ts                  # serves until Ctrl-C; open http://127.0.0.1:8787/inspect
 *   npx tsx examples/inspector.ts --once           # one typed turn watched through the inspector stream, then exits
 *   npx tsx examples/inspector.ts --stately ws://127.0.0.1:8080
 *                                                  # also forward every (scrubbed) inspection event to
 *                                                  # Stately's inspector (@statelyai/inspect) at that URL
 *
 * On the offline voice by default (no keys): Flite TTS, pocketsphinx STT, a scripted agent.
 */
// In your app: import { VoiceServer, detectProviders } from 'voxstate';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { InspectionEvent } from 'xstate';
import { VoxClient } from '../src/client/index.js';
import { detectProviders, VoiceServer } from '../src/index.js';

const { values } = parseArgs({ options: { once: { type: 'boolean' }, stately: { type: 'string' } } });

// Optional: Stately's own inspector. `createWebSocketInspector` connects to a Stately inspector
// server (npx @statelyai/inspect, or createInspectorServer from @statelyai/inspect/server).
let forward: ((event: InspectionEvent) => void) | undefined;
let stately: { stop(): void } | undefined;
if (values.stately !== undefined) {
  const { createWebSocketInspector } = await import('@statelyai/inspect');
  const inspector = createWebSocketInspector({ url: values.stately });
  forward = (event) => inspector.inspect.next?.(event);
  stately = inspector;
}

const { providers } = detectProviders();
const server = new VoiceServer({
  providers,
  systemPrompt: 'You take table bookings for Chez Voxstate. Be brief.',
  port: values.once === true ? 0 : 8787,
  // On by default on a loopback host; said here so it stays on if you change `host`. Elsewhere,
  // /inspect and /metrics want a bearer token (or ?token=) your `auth` hook accepts.
  inspect: forward === undefined ? true : { forward },
  metrics: true,
});
const { host, port, url } = await server.start();
const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
console.log(`voice: ${url}`);
console.log(`inspector: ${base}/inspect   metrics: ${base}/metrics`);

if (values.once === true) {
  // A client talks; the inspector stream (what /inspect draws from) watches it.
  const client = new VoxClient({ url, audio: { transport: 'websocket', sampleRate: 16000 }, heartbeatMs: 0 });
  const replied = new Promise<void>((resolve) => client.on('reply.done', () => resolve()));
  const ready = await client.connect();
  const inspector = new WebSocket(`ws://${host.includes(':') ? `[${host}]` : host}:${port}/inspect/ws`);
  const states: string[] = [];
  const caughtUp = new Promise<void>((resolve) => {
    inspector.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; logs?: { entries: { kind: string; value?: unknown; actor: string }[] }[]; root?: string };
      if (message.type === 'inspect.session') resolve();
      for (const entry of message.logs?.flatMap((log) => log.entries) ?? []) {
        if (entry.kind === 'state') states.push(JSON.stringify(entry.value));
      }
    });
  });
  await new Promise((resolve) => inspector.once('open', resolve));
  inspector.send(JSON.stringify({ type: 'watch', sessionId: ready.sessionId }));
  await caughtUp;
  client.sendText('Hello, is a table free tonight?');
  await replied;
  // The stream batches entries every 50 ms.
  await new Promise((resolve) => setTimeout(resolve, 200));
  console.log(`inspector saw ${states.length} state changes, e.g. ${states.find((s) => s.includes('thinking')) ?? '(none)'}`);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  console.log(metrics.split('\n').filter((line) => line.startsWith('voxstate_turns_total')).join('\n'));
  inspector.close();
  await client.close();
  stately?.stop();
  await server.stop();
} else {
  process.once('SIGINT', () => {
    stately?.stop();
    void server.stop().then(() => process.exit(0));
  });
}
