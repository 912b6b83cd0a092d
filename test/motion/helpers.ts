import { LocalMotionServer, type LocalMotionServerInfo, type LocalMotionServerOptions } from '../../src/motion/local-server/index.js';
import type { MotionClientOptions } from '../../src/motion/client/index.js';

export const API_KEY = 'test-api-key-3f9c';
export const APP_ID = 'app-test';
export const AVATAR_ID = 'avatar-1';

export interface Harness {
  readonly server: LocalMotionServer;
  readonly info: LocalMotionServerInfo;
  clientOptions(overrides?: Partial<MotionClientOptions>): MotionClientOptions;
}

export async function startServer(options: Partial<LocalMotionServerOptions> = {}): Promise<Harness> {
  const server = new LocalMotionServer();
  const info = await server.start({ port: 0, host: '127.0.0.1', apiKey: API_KEY, appId: APP_ID, avatars: [AVATAR_ID], ...options });
  return {
    server,
    info,
    clientOptions: (overrides = {}) => ({
      apiKey: API_KEY,
      appId: APP_ID,
      avatarId: AVATAR_ID,
      consoleEndpointUrl: info.consoleEndpointUrl,
      ingressEndpointUrl: info.ingressEndpointUrl,
      handshakeTimeoutMs: 2000,
      ...overrides,
    }),
  };
}

/** Speech-like test audio: a 180 Hz buzz with a 4 Hz syllable envelope. */
export function speech(seconds: number, sampleRate = 16000): Int16Array {
  const out = new Int16Array(Math.round(seconds * sampleRate));
  for (let i = 0; i < out.length; i += 1) {
    const t = i / sampleRate;
    const syllable = Math.max(0, Math.sin(2 * Math.PI * 4 * t));
    out[i] = Math.round(12000 * syllable * Math.sin(2 * Math.PI * 180 * t));
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when `predicate` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
