/**
 * The WebSocket surface the client needs, satisfied by the browser's global WebSocket and by the
 * `ws` package. Handler parameters are typed `never` so either implementation's handler types fit;
 * the client narrows the events itself.
 */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

/** `ws` adds `terminate()` (drop without a closing handshake); browsers have no equivalent. */
interface Terminable {
  terminate(): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const SOCKET_OPEN = 1;

/** The injected constructor, else the global one (browsers, Node ≥ 22), else the `ws` package. */
export async function resolveWebSocket(injected: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (injected !== undefined) return injected;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global !== undefined) return global;
  // A variable specifier keeps browser bundlers from trying to bundle the Node-only package.
  const specifier = 'ws';
  const module = (await import(specifier)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
  const constructor = module.WebSocket ?? module.default;
  if (constructor === undefined) throw new Error('no WebSocket implementation: pass options.WebSocket');
  return constructor;
}

/** Closes without waiting for the peer when possible (a dead peer never completes the handshake). */
export function dropSocket(socket: WebSocketLike, code: number, reason: string): void {
  socket.onopen = null;
  socket.onmessage = null;
  socket.onclose = null;
  socket.onerror = () => {};
  try {
    const terminable = socket as Partial<Terminable>;
    if (typeof terminable.terminate === 'function') terminable.terminate();
    else socket.close(code, reason);
  } catch {
    // Already closed or never opened: nothing left to release.
  }
}
