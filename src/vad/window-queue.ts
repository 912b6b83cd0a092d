/**
 * A FIFO of 512-sample windows and their callbacks for one VAD stream: a ring over one contiguous
 * Float32Array that grows by doubling. Pushing copies the window into its slot; nothing is allocated
 * per window once the ring is large enough (a real-time stream needs 1–2 slots). A ring that grew
 * past {@link KEEP_SLOTS} for a backlog goes back to the small one once it is empty, so a stream
 * that fell behind once (up to maxQueuePerStream windows, 2 MB) does not keep that memory for good.
 */
import { SILERO_WINDOW } from './model.js';

/** Slots an empty ring keeps (at 32 ms a window, 8 are a quarter second of backlog). */
const KEEP_SLOTS = 8;

export type WindowCallback<E> = ((error: E | undefined, probability: number, window: Float32Array) => void) | undefined;

export class WindowQueue<E> {
  #samples = new Float32Array(2 * SILERO_WINDOW);
  /** One subarray view per slot, made when the ring grows (so callbacks get a view without allocating). */
  #views: Float32Array[] = [this.#samples.subarray(0, SILERO_WINDOW), this.#samples.subarray(SILERO_WINDOW)];
  #callbacks: Array<WindowCallback<E>> = [undefined, undefined];
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Copies `window` (SILERO_WINDOW samples) to the tail. */
  push(window: Float32Array, callback: WindowCallback<E>): void {
    if (this.#length === this.#views.length) this.#grow();
    const slot = (this.#head + this.#length) % this.#views.length;
    (this.#views[slot] as Float32Array).set(window);
    this.#callbacks[slot] = callback;
    this.#length++;
  }

  /** The oldest window (valid until it is shifted). The queue must not be empty. */
  head(): Float32Array {
    return this.#views[this.#head] as Float32Array;
  }

  /** The sample array and offset of the oldest window, for copying without a view. */
  get buffer(): Float32Array {
    return this.#samples;
  }

  get headOffset(): number {
    return this.#head * SILERO_WINDOW;
  }

  /** The oldest window's callback. */
  headCallback(): WindowCallback<E> {
    return this.#callbacks[this.#head];
  }

  /**
   * Removes the oldest window. Call it after the window's callback returned: a push from inside the
   * callback never overwrites the window the callback is reading (a full ring grows instead).
   */
  shift(): void {
    if (this.#length === 0) return;
    this.#callbacks[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#views.length;
    this.#length--;
    if (this.#length === 0 && this.#views.length > KEEP_SLOTS) this.#resize(KEEP_SLOTS);
  }

  /** Slots in the ring (for tests: it grows with a backlog and shrinks once drained). */
  get capacity(): number {
    return this.#views.length;
  }

  /** The `index`-th oldest window (0 = the head), valid until it is shifted. `index` < length. */
  at(index: number): Float32Array {
    return this.#views[(this.#head + index) % this.#views.length] as Float32Array;
  }

  /**
   * Removes the second-oldest window (the oldest may be in a running batch), copying it to `into`,
   * and returns its callback. The queue must hold at least two windows.
   */
  removeSecond(into: Float32Array): WindowCallback<E> {
    return this.removeAt(1, into);
  }

  /**
   * Removes the `index`-th oldest window (the ones before it may be in a running batch), copying it
   * to `into`, and returns its callback. `index` < length.
   */
  removeAt(index: number, into: Float32Array): WindowCallback<E> {
    const size = this.#views.length;
    const slot = (this.#head + index) % size;
    into.set(this.#views[slot] as Float32Array);
    const callback = this.#callbacks[slot];
    // Shift the windows after it one slot toward the head.
    for (let k = index; k < this.#length - 1; k++) {
      const to = (this.#head + k) % size;
      const from = (this.#head + k + 1) % size;
      (this.#views[to] as Float32Array).set(this.#views[from] as Float32Array);
      this.#callbacks[to] = this.#callbacks[from];
    }
    this.#callbacks[(this.#head + this.#length - 1) % size] = undefined;
    this.#length--;
    return callback;
  }

  /** Forgets every callback (the windows stay queued and are still scored, silently). */
  dropCallbacks(): void {
    this.#callbacks.fill(undefined);
  }

  #grow(): void {
    this.#resize(this.#views.length * 2);
  }

  /** A new ring of `size` slots (≥ length) holding the queued windows from slot 0. */
  #resize(size: number): void {
    const oldSize = this.#views.length;
    const samples = new Float32Array(size * SILERO_WINDOW);
    const callbacks: Array<WindowCallback<E>> = new Array<WindowCallback<E>>(size).fill(undefined);
    for (let k = 0; k < this.#length; k++) {
      const from = (this.#head + k) % oldSize;
      samples.set(this.#views[from] as Float32Array, k * SILERO_WINDOW);
      callbacks[k] = this.#callbacks[from];
    }
    this.#samples = samples;
    this.#views = Array.from({ length: size }, (_, k) => samples.subarray(k * SILERO_WINDOW, (k + 1) * SILERO_WINDOW));
    this.#callbacks = callbacks;
    this.#head = 0;
  }
}
