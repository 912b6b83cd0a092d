/** A raw WebSocket test client for the server tests: real sockets on loopback, nothing mocked. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { float32ToInt16 } from '../../src/audio/frame.js';
import { readWav } from '../../src/audio/wav.js';

export interface Received {
  readonly type: string;
  readonly [key: string]: unknown;
}

export class RawClient {
  readonly socket: WebSocket;
  readonly messages: Received[] = [];
  readonly audio: Int16Array[] = [];
  closeCode: number | undefined;
  #waiters: { match: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];
  #closed: Promise<number>;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on('message', (data, isBinary) => {
      if (isBinary) {
        const bytes = data as Buffer;
        this.audio.push(new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
        return;
      }
      const message = JSON.parse(String(data)) as Received;
      this.messages.push(message);
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!waiter.match(message)) return true;
        waiter.resolve(message);
        return false;
      });
    });
    this.#closed = new Promise((resolve) => this.socket.on('close', (code) => resolve((this.closeCode = code))));
  }

  opened(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  sendAudio(pcm: Int16Array): void {
    this.socket.send(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  /** The first message (already received or future) of `type` matching `match`. */
  next(type: string, match: (m: Received) => boolean = () => true, timeoutMs = 15_000): Promise<Received> {
    const seen = this.messages.find((m) => m.type === type && match(m));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.#waiters.push({
        match: (m) => m.type === type && match(m),
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  of(type: string): Received[] {
    return this.messages.filter((m) => m.type === type);
  }

  closed(): Promise<number> {
    return this.#closed;
  }

  close(): Promise<number> {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close();
    return this.#closed;
  }

  async hello(audio: { transport: 'websocket' | 'webrtc'; sampleRate: 16000 | 24000 | 48000 } = { transport: 'websocket', sampleRate: 16000 }, token?: string): Promise<Received> {
    await this.opened();
    this.send({ type: 'session.hello', protocol: 1, audio: { ...audio, format: 'pcm16' }, ...(token === undefined ? {} : { token }) });
    return this.next('session.ready');
  }
}

export function fixture(name: string): { pcm: Int16Array; sampleRate: number } {
  const bytes = readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)));
  const wav = readWav(new Uint8Array(bytes));
  return { pcm: float32ToInt16(wav.samples), sampleRate: wav.sampleRate };
}

/** Streams PCM in 20 ms frames at real-time speed (scheduled against the start time), then `silenceMs` of silence. */
export async function streamRealtime(send: (frame: Int16Array) => void, pcm: Int16Array, sampleRate: number, silenceMs = 0): Promise<void> {
  const frame = (sampleRate * 20) / 1000;
  const total = pcm.length + Math.round((silenceMs * sampleRate) / 1000);
  const start = performance.now();
  for (let offset = 0, n = 0; offset < total; offset += frame, n++) {
    const chunk = new Int16Array(frame);
    if (offset < pcm.length) chunk.set(pcm.subarray(offset, Math.min(pcm.length, offset + frame)));
    send(chunk);
    const due = start + (n + 1) * 20;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Open handles of the kinds a server could leak (sockets, servers, timers, UDP). */
export function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (['TCPServerWrap', 'TCPSocketWrap', 'UDPWrap', 'Timeout', 'Immediate'].includes(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}
