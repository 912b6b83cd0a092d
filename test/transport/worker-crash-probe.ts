/**
 * Loaded into every WebRTC worker of a test pool (WebRtcWorkerPool `preload`): on request over a
 * BroadcastChannel, the worker thread crashes the way a bug would — an uncaught throw or a
 * `process.exit()` — so tests can kill a real worker with live sessions on it.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';

export const CRASH_CHANNEL = 'voxstate-test-webrtc-worker-crash';

export interface CrashRequest {
  readonly threadId: number;
  readonly how: 'throw' | 'exit';
}

const channel = new BroadcastChannel(CRASH_CHANNEL);
channel.unref();
channel.onmessage = (event) => {
  const request = (event as { data: CrashRequest }).data;
  if (request.threadId !== threadId) return;
  if (request.how === 'exit') process.exit(3);
  setImmediate(() => {
    throw new Error('a bug in the WebRTC worker');
  });
};
