/**
 * Avatar relay, end to end on one machine with npm-start-style defaults: an embedded local Motion
 * Server, a VoiceServer whose sessions drive it, and a Node client that plays the role of an
 * AvatarKit web page — it receives avatar.audio and avatar.frames (and would hand them to
 * `yieldAudioData` / `yieldFramesData`), here it counts them and prints the frame rate.
 *
 *   npx tsx examples/avatar-relay.ts
 *
 * With SPATIUS_API_KEY, SPATIUS_APP_ID and SPATIUS_AVATAR_ID set, the same code talks to the real
 * Spatius Motion Server instead (SPATIUS_REGION optional).
 */
// In your app: import { VoxClient } from 'voxstate/client'; import { ... } from 'voxstate';
import { VoxClient } from '../src/client/index.js';
import { LocalMotionServer, VoiceServer, detectProviders, type MotionLinkOptions } from '../src/index.js';

const local = process.env['SPATIUS_API_KEY'] ? undefined : new LocalMotionServer();
let motion: MotionLinkOptions;
if (local) {
  const info = await local.start({ apiKey: 'local-demo-key', appId: 'demo-app' });
  motion = { apiKey: 'local-demo-key', appId: 'demo-app', avatarId: 'demo-avatar', consoleEndpointUrl: info.consoleEndpointUrl, ingressEndpointUrl: info.ingressEndpointUrl };
  console.log(`local Motion Server: ${info.url}`);
} else {
  motion = {
    apiKey: process.env['SPATIUS_API_KEY'] as string,
    appId: process.env['SPATIUS_APP_ID'] ?? '',
    avatarId: process.env['SPATIUS_AVATAR_ID'] ?? '',
    ...(process.env['SPATIUS_REGION'] ? { region: process.env['SPATIUS_REGION'] } : {}),
  };
}

// Offline voice by default (Flite + scripted agent), real providers when keys are set.
const { providers } = detectProviders();
const server = new VoiceServer({ providers, port: 0, vad: false, motion, systemPrompt: 'You are a friendly receptionist.' });
const { url } = await server.start();

const client = new VoxClient({ url, audio: { transport: 'websocket', sampleRate: 16000 }, heartbeatMs: 0 });
let frames = 0;
let audioBytes = 0;
let first = 0;
let last = 0;
const conversations = new Set<string>();
client.on('message', (message) => {
  if (message.type === 'avatar.frames') {
    frames += message.frames.length;
    conversations.add(message.conversationId);
    last = performance.now();
    first ||= last;
  } else if (message.type === 'avatar.audio') {
    audioBytes += Buffer.from(message.audio, 'base64').length;
  }
});
const replied = new Promise<string>((resolve) => client.on('reply.done', (reply) => resolve(reply.text)));
await client.connect();
await new Promise((resolve) => setTimeout(resolve, 300)); // the Motion link handshakes
client.sendText('Hello! Could you book a table for two tomorrow at seven?');
console.log(`agent: ${await replied}`);
await new Promise((resolve) => setTimeout(resolve, 800)); // the last frames
const seconds = audioBytes / 2 / 16_000;
console.log(
  `avatar feed: ${frames} FLAME keyframes for ${seconds.toFixed(2)} s of speech (${(frames / seconds).toFixed(1)} per second of audio), ` +
    `${conversations.size} conversation id, relayed over ${((last - first) / 1000).toFixed(2)} s`,
);
await client.close();
await server.stop();
await local?.stop();
