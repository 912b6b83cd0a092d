/**
 * Library mode: a voice server with a tool, hooks and a guard, on the offline voice by default.
 *
 *   npx tsx examples/embed-server.ts            # serves until Ctrl-C
 *   npx tsx examples/embed-server.ts --once     # one typed turn through a client, then exits
 */
// In your app: import { VoiceServer, detectProviders, type Tool } from 'voxstate';
import { VoxClient } from '../src/client/index.js';
import { detectProviders, VoiceServer, type Tool } from '../src/index.js';

const tables = new Map<string, number>([['19:00', 2], ['20:00', 0]]);

const checkAvailability: Tool = {
  name: 'check_availability',
  description: 'How many tables are free at a time (HH:MM, 24 h)',
  parameters: { type: 'object', properties: { time: { type: 'string' } }, required: ['time'] },
  async execute(args) {
    const time = (args as { time: string }).time;
    return { time, free: tables.get(time) ?? 0 };
  },
};

const { providers, choices } = detectProviders();
for (const choice of choices) console.log(`${choice.kind}: ${choice.name} (${choice.reason})`);

const server = new VoiceServer({
  providers,
  tools: [checkAvailability],
  systemPrompt: 'You take table bookings for Chez Voxstate. Be brief.',
  port: process.argv.includes('--once') ? 0 : 8787,
  // 700 ms of *voiced* speech cuts the agent; a "yeah" (~420 ms voiced) pauses it and, 800 ms into the
  // user's silence, it goes on (interruption.false on the wire).
  turn: { minInterruptionMs: 700, falseInterruptionTimeoutMs: 800 },
  session: { ttlMs: 120_000 },
  hooks: {
    onTurnEnd: (m) =>
      console.log(`turn ${m.turnId} (${m.source}): LLM first token ${m.llmFirstTokenMs?.toFixed(0) ?? '-'} ms, then first audio ${m.ttsFirstAudioMs?.toFixed(0) ?? '-'} ms`),
    onReply: (r) => console.log(`agent${r.interrupted ? ' (cut off)' : ''}: ${r.text}`),
    // Never read a card number back.
    guard: ({ kind, text }) => (kind === 'reply' && /\b\d{13,19}\b/.test(text) ? { action: 'veto', reason: 'card number' } : { action: 'allow' }),
  },
});
server.on('error', (e) => console.error(`error ${e.code}: ${e.message}`));
const { url } = await server.start();
console.log(`listening on ${url}`);

if (process.argv.includes('--once')) {
  const client = new VoxClient({ url, audio: { transport: 'websocket', sampleRate: 16000 }, heartbeatMs: 0 });
  const done = new Promise((resolve) => client.on('reply.done', resolve));
  await client.connect();
  client.sendText('Hello, is a table free tonight?');
  await done;
  await client.close();
  await server.stop();
} else {
  process.once('SIGINT', () => void server.stop().then(() => process.exit(0)));
}
