/**
 * The recent inbound audio of a session (16 kHz mono), addressed by audio-stream time: the position
 * the VAD counts in, so `vad.onset.atMs` names a place in it. The VAD actor writes every frame it is
 * given here before scoring it and restarts the count whenever it reopens its stream; the
 * recognizer reads each user turn from its onset (minus the prefix padding) for as long as the turn
 * is open. Bounded: only the last `capacityMs` is kept for readers that start late.
 */

const RATE = 16_000;

interface Reader {
  next: number;
  wake: (() => void) | undefined;
  closed: boolean;
}

export class AudioRecorder {
  readonly #ring: Float32Array;
  /** Samples written since the last reset: the audio-stream position, in samples. */
  #written = 0;
  #generation = 0;
  readonly #readers = new Set<Reader>();

  constructor(capacityMs = 3000) {
    this.#ring = new Float32Array(Math.max(1, Math.round((capacityMs / 1000) * RATE)));
  }

  /** The audio-stream position in ms (audio written since the last reset). */
  get positionMs(): number {
    return (this.#written / RATE) * 1000;
  }

  write(frame: Float32Array): void {
    const ring = this.#ring;
    let offset = 0;
    while (offset < frame.length) {
      const at = this.#written % ring.length;
      const count = Math.min(frame.length - offset, ring.length - at);
      ring.set(frame.subarray(offset, offset + count), at);
      offset += count;
      this.#written += count;
    }
    for (const reader of this.#readers) {
      const wake = reader.wake;
      reader.wake = undefined;
      wake?.();
    }
  }

  /** The stream restarts at position 0 (the VAD reopened its stream): every reader ends. */
  reset(): void {
    this.#written = 0;
    this.#generation++;
    for (const reader of this.#readers) this.#end(reader);
  }

  /**
   * The audio from `fromMs` on (clamped to what is still kept), as it arrives, until `stop()` is
   * called (the rest already written is still delivered) or the recorder is reset.
   */
  read(fromMs: number): { chunks: AsyncIterable<Float32Array>; stop: () => void } {
    const ring = this.#ring;
    const oldest = Math.max(0, this.#written - ring.length);
    const reader: Reader = { next: Math.max(oldest, Math.min(this.#written, Math.round((Math.max(0, fromMs) / 1000) * RATE))), wake: undefined, closed: false };
    const generation = this.#generation;
    this.#readers.add(reader);
    const self = this;
    async function* chunks(): AsyncGenerator<Float32Array> {
      try {
        for (;;) {
          if (generation !== self.#generation) return;
          // A reader that fell further behind than the ring skips ahead (it cannot be served).
          reader.next = Math.max(reader.next, self.#written - ring.length);
          if (reader.next < self.#written) {
            const at = reader.next % ring.length;
            const count = Math.min(self.#written - reader.next, ring.length - at);
            reader.next += count;
            yield ring.slice(at, at + count);
            continue;
          }
          if (reader.closed) return;
          await new Promise<void>((resolve) => (reader.wake = resolve));
        }
      } finally {
        self.#readers.delete(reader);
      }
    }
    return { chunks: chunks(), stop: () => this.#end(reader) };
  }

  #end(reader: Reader): void {
    reader.closed = true;
    const wake = reader.wake;
    reader.wake = undefined;
    wake?.();
  }
}
