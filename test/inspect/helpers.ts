/** A raw client of the inspector stream (`/inspect/ws`) for the tests: a real socket, nothing mocked. */
import WebSocket from 'ws';
import type { InspectServerMessage, LogEntry } from '../../src/inspect/protocol.js';

export class InspectStream {
  readonly socket: WebSocket;
  readonly messages: InspectServerMessage[] = [];
  /** Every raw text frame, as received (for scanning for secrets). */
  readonly frames: string[] = [];
  #waiters: { match: (m: InspectServerMessage) => boolean; resolve: () => void }[] = [];

  constructor(url: string, headers?: Record<string, string>) {
    this.socket = new WebSocket(url, headers === undefined ? {} : { headers });
    this.socket.on('message', (data) => {
      const text = String(data);
      this.frames.push(text);
      this.messages.push(JSON.parse(text) as InspectServerMessage);
      this.#check();
    });
  }

  opened(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  /** Every log entry received for `sessionId`: the catch-up's, then the live ones. */
  entries(sessionId: string): LogEntry[] {
    return this.messages.flatMap((m) =>
      m.type === 'inspect.session' && m.session.id === sessionId ? [...m.log] : m.type === 'inspect.log' ? m.logs.filter((l) => l.sessionId === sessionId).flatMap((l) => l.entries) : [],
    );
  }

  /** Waits until `condition` holds over the messages received so far. */
  until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inspector stream: no ${what} within ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.#waiters.push({
        match: () => condition(),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** The first message of `type` (received or to come) matching `match`. */
  async next<T extends InspectServerMessage['type']>(type: T, match: (m: Extract<InspectServerMessage, { type: T }>) => boolean = () => true): Promise<Extract<InspectServerMessage, { type: T }>> {
    const find = () => this.messages.find((m): m is Extract<InspectServerMessage, { type: T }> => m.type === type && match(m as Extract<InspectServerMessage, { type: T }>));
    await this.until(() => find() !== undefined, type);
    return find() as Extract<InspectServerMessage, { type: T }>;
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.match(this.messages[this.messages.length - 1] as InspectServerMessage)) return true;
      waiter.resolve();
      return false;
    });
  }
}
