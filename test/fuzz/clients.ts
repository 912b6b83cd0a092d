/**
 * Loopback clients for the protocol fuzz and fault tests (no vitest in here).
 *
 * - `Probe`: a raw `ws` client that sends one step at a time and then a `ping`; the server handles a
 *   connection's messages in order, so what arrives before the matching `pong` (or the close) is the
 *   server's whole answer to that step. Every JSON message is checked against the server schema.
 * - `LiveClient`: a websocket-audio client with a microphone that never stops: 20 ms PCM16 frames
 *   paced against a start time, silence unless a clip is playing, like a real one. It records every
 *   message and every agent audio frame in arrival order, so a reply's audio can be checked whole.
 */
import WebSocket from 'ws';
import { parseServerMessage } from '../../src/protocol/codec.js';
import type { ServerMessage } from '../../src/protocol/messages.js';

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export type Sent = string | { readonly text: Uint8Array } | { readonly binary: Uint8Array };

export interface StepAnswer {
  /** Server messages that arrived in answer to the step (the pong left out). */
  readonly messages: ServerMessage[];
  /** The socket closed during the step. */
  readonly closed: boolean;
}

export class Probe {
  readonly ws: WebSocket;
  readonly messages: ServerMessage[] = [];
  /** Text messages from the server that its own schema refuses (must stay empty). */
  readonly invalid: string[] = [];
  closeCode: number | undefined;
  readonly #closed: Promise<number>;
  #pings = 0;
  #listeners: ((message: ServerMessage) => void)[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('error', () => undefined); // a refused or reset socket is an outcome, not a test crash
    this.ws.on('message', (data, binary) => {
      if (binary) return;
      const text = String(data);
      const parsed = parseServerMessage(text);
      if (!parsed.ok) {
        this.invalid.push(text.slice(0, 200));
        return;
      }
      this.messages.push(parsed.message);
      for (const listener of this.#listeners) listener(parsed.message);
    });
    this.#closed = new Promise((resolve) => this.ws.on('close', (code) => resolve((this.closeCode = code))));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  async opened(): Promise<boolean> {
    if (this.ws.readyState === WebSocket.CONNECTING) {
      await Promise.race([new Promise((resolve) => this.ws.once('open', resolve)), this.#closed]);
    }
    return this.open;
  }

  send(item: Sent): void {
    if (!this.open) return;
    if (typeof item === 'string') this.ws.send(item);
    else if ('text' in item) this.ws.send(item.text, { binary: false });
    else this.ws.send(item.binary, { binary: true });
  }

  /** Sends `item`, then a ping; resolves with what came before the pong, or at the close. */
  async step(item: Sent | undefined, timeoutMs = 10_000): Promise<StepAnswer> {
    const from = this.messages.length;
    if (!this.open) return { messages: [], closed: true };
    if (item !== undefined) this.send(item);
    const t = ++this.#pings;
    this.send(JSON.stringify({ type: 'ping', t }));
    let listener: ((message: ServerMessage) => void) | undefined;
    const pong = new Promise<void>((resolve) => {
      listener = (message) => {
        if (message.type === 'pong' && message.t === t) resolve();
      };
      this.#listeners.push(listener);
    });
    const outcome = await Promise.race([pong.then(() => 'pong'), this.#closed.then(() => 'closed'), delay(timeoutMs).then(() => 'timeout')]);
    this.#listeners = this.#listeners.filter((l) => l !== listener);
    if (outcome === 'timeout') throw new Error(`no pong and no close within ${timeoutMs} ms`);
    const messages = this.messages.slice(from).filter((m) => !(m.type === 'pong' && m.t === t));
    return { messages, closed: outcome === 'closed' };
  }

  closed(): Promise<number> {
    return this.#closed;
  }

  /** Ends the socket from this side (a clean close, or a drop) and waits for it. */
  async end(drop = false): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (drop || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close();
    await Promise.race([this.#closed, delay(3000).then(() => this.ws.terminate())]);
  }
}

export type Event = { readonly kind: 'message'; readonly message: Record<string, unknown> } | { readonly kind: 'audio'; readonly samples: Int16Array };

/** One reply as the client got it. */
export interface HeardReply {
  readonly replyId: string;
  readonly text: string;
  readonly interrupted: boolean;
  /** The reply's agent frames, between its reply.audio_start and reply.audio_end. */
  readonly frames: Int16Array[];
  readonly sampleRate: number | undefined;
}

export class LiveClient {
  readonly ws: WebSocket;
  readonly events: Event[] = [];
  closeCode: number | undefined;
  readonly #rate: number;
  readonly #frame: number;
  #clip: { pcm: Int16Array; offset: number; done: () => void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #anchor = 0;
  #sent = 0;
  #waiters: { match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  readonly #closed: Promise<number>;

  constructor(url: string, rate = 16_000) {
    this.#rate = rate;
    this.#frame = rate / 50;
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data, binary) => {
      if (binary) {
        const bytes = data as Buffer;
        this.events.push({ kind: 'audio', samples: new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) });
        return;
      }
      const message = JSON.parse(String(data)) as Record<string, unknown>;
      this.events.push({ kind: 'message', message });
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(message)) return true;
        w.resolve(message);
        return false;
      });
    });
    this.#closed = new Promise((resolve) => this.ws.on('close', (code) => resolve((this.closeCode = code))));
  }

  get messages(): Record<string, unknown>[] {
    return this.events.flatMap((e) => (e.kind === 'message' ? [e.message] : []));
  }

  /** Opens, says session.hello (websocket audio) and starts the microphone. */
  async connect(): Promise<Record<string, unknown>> {
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.send(JSON.stringify({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: this.#rate } }));
    const ready = await this.next('session.ready');
    this.#anchor = performance.now();
    this.#tick();
    return ready;
  }

  /** The first message (already received or future) of `type` matching `match`. */
  next(type: string, match: (m: Record<string, unknown>) => boolean = () => true, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const seen = this.messages.find((m) => m['type'] === type && match(m));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} within ${timeoutMs} ms; got ${this.messages.map((m) => m['type']).join(', ')}`)), timeoutMs);
      this.#waiters.push({
        match: (m) => m['type'] === type && match(m),
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** Speaks `pcm` into the microphone (after what is playing); resolves when its last frame was sent. */
  say(pcm: Int16Array): Promise<void> {
    return new Promise((resolve) => {
      this.#clip = { pcm, offset: 0, done: resolve };
    });
  }

  /** The replies received so far, whole (their reply.done came). */
  replies(): HeardReply[] {
    const replies: HeardReply[] = [];
    let current: { replyId: string; frames: Int16Array[]; sampleRate: number | undefined } | undefined;
    const framesOf = new Map<string, { frames: Int16Array[]; sampleRate: number | undefined }>();
    for (const event of this.events) {
      if (event.kind === 'audio') {
        current?.frames.push(event.samples);
        continue;
      }
      const m = event.message;
      if (m['type'] === 'reply.audio_start') {
        current = { replyId: String(m['replyId']), frames: [], sampleRate: Number(m['sampleRate']) };
        framesOf.set(current.replyId, current);
      } else if (m['type'] === 'reply.audio_end') current = undefined;
      else if (m['type'] === 'reply.done') {
        const heard = framesOf.get(String(m['replyId']));
        replies.push({
          replyId: String(m['replyId']),
          text: String(m['text']),
          interrupted: m['interrupted'] === true,
          frames: heard?.frames ?? [],
          sampleRate: heard?.sampleRate,
        });
      }
    }
    return replies;
  }

  closed(): Promise<number> {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.stop();
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await Promise.race([this.#closed, delay(3000).then(() => this.ws.terminate())]);
  }

  /** Stops the microphone. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick = (): void => {
    // Frame n is due at anchor + n × 20 ms; frames a late timer missed go out at once.
    while (this.#anchor + this.#sent * 20 <= performance.now()) {
      const frame = new Int16Array(this.#frame);
      const clip = this.#clip;
      if (clip !== undefined) {
        frame.set(clip.pcm.subarray(clip.offset, clip.offset + this.#frame));
        clip.offset += this.#frame;
        if (clip.offset >= clip.pcm.length) {
          this.#clip = undefined;
          clip.done();
        }
      }
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
      this.#sent++;
    }
    this.#timer = setTimeout(this.#tick, Math.max(1, this.#anchor + this.#sent * 20 - performance.now()));
  };
}

/** Root mean square of PCM16 samples. */
export function rms(samples: Int16Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return samples.length === 0 ? 0 : Math.sqrt(sum / samples.length);
}
