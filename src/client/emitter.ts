/**
 * A minimal typed event emitter that works in browsers and Node. A listener that throws is
 * reported to `onListenerError` and never stops the other listeners or the client.
 */
export class TypedEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>();
  readonly #onListenerError: (error: unknown, event: PropertyKey) => void;

  constructor(onListenerError: (error: unknown, event: PropertyKey) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    // Wrapped so the same function can be subscribed twice and unsubscribed independently.
    const entry = (payload: Events[K]): void => listener(payload);
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(entry as (payload: never) => void);
    return () => {
      set.delete(entry as (payload: never) => void);
    };
  }

  once<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as (payload: Events[K]) => void)(payload);
      } catch (error) {
        try {
          this.#onListenerError(error, event);
        } catch {
          // An error handler that throws has nowhere left to report to.
        }
      }
    }
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
