import type { Logger } from '../observability/logger.js';

/**
 * A set of listeners where one that throws is logged and skipped: a bug in a consumer must not
 * take down the audio path of a session.
 */
export class ListenerSet<Args extends unknown[]> {
  readonly #listeners = new Set<(...args: Args) => void>();
  readonly #logger: Logger;
  readonly #name: string;

  constructor(logger: Logger, name: string) {
    this.#logger = logger;
    this.#name = name;
  }

  get size(): number {
    return this.#listeners.size;
  }

  add(listener: (...args: Args) => void): () => void {
    // Wrapped so the same function can be subscribed twice and unsubscribed independently.
    const entry = (...args: Args): void => listener(...args);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(...args: Args): void {
    for (const listener of this.#listeners) {
      try {
        listener(...args);
      } catch (error) {
        this.#logger.warn({ err: error, listener: this.#name }, 'transport listener threw');
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
