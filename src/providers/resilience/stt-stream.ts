/**
 * Streaming STT helpers: the tape that lets another attempt hear an utterance from its start, and
 * streaming for batch-only providers.
 */
import type { SttOptions, SttProvider, Transcript } from '../types.js';

/**
 * Audio that a streaming STT call consumed, kept so that another attempt (a retry, or the next
 * provider of a fallback) can hear the utterance from its start. Recording stops at the first
 * transcript or after `maxSamples`; from then on there is nothing left to replay.
 */
export class AudioTape {
  readonly #source: AsyncIterator<Float32Array>;
  readonly #maxSamples: number;
  #recorded: Float32Array[] = [];
  #samples = 0;
  #recording = true;
  #ended = false;
  #pending: Promise<void> | undefined;
  #reader = 0;

  constructor(source: AsyncIterable<Float32Array>, maxSamples: number) {
    this.#source = source[Symbol.asyncIterator]();
    this.#maxSamples = maxSamples;
  }

  /** True while every consumed chunk is still recorded. */
  get replayable(): boolean {
    return this.#recording;
  }

  stopRecording(): void {
    this.#recording = false;
  }

  /** A fresh reader from the start of the recording; older readers stop. */
  async *read(): AsyncGenerator<Float32Array> {
    const id = ++this.#reader;
    let index = 0;
    while (id === this.#reader) {
      if (index < this.#recorded.length) {
        const chunk = this.#recorded[index++];
        if (chunk) yield chunk;
        continue;
      }
      if (!this.#recording && this.#recorded.length > 0) {
        this.#recorded = [];
        index = 0;
      }
      if (this.#ended) return;
      await this.#pull();
    }
  }

  #pull(): Promise<void> {
    this.#pending ??= this.#source.next().then(
      (result) => {
        this.#pending = undefined;
        if (result.done) {
          this.#ended = true;
          return;
        }
        this.#recorded.push(result.value);
        this.#samples += result.value.length;
        if (this.#samples > this.#maxSamples) this.#recording = false;
      },
      (error: unknown) => {
        this.#pending = undefined;
        throw error;
      },
    );
    return this.#pending;
  }

  async close(): Promise<void> {
    this.#reader++;
    this.#recorded = [];
    await this.#source.return?.();
  }
}

/** `maxReplaySeconds` (default 60 s) of 16 kHz audio, in samples. */
export function replaySamples(maxReplaySeconds: number | undefined): number {
  return (maxReplaySeconds ?? 60) * 16_000;
}

/**
 * Runs `run` with a tape over `audio` and closes the tape however the stream ends. Shared by the
 * retrying and the fallback STT stream.
 */
export async function* withReplay(
  audio: AsyncIterable<Float32Array>,
  maxSamples: number,
  run: (tape: AudioTape) => AsyncIterable<Transcript>,
): AsyncGenerator<Transcript> {
  const tape = new AudioTape(audio, maxSamples);
  try {
    yield* run(tape);
  } finally {
    await tape.close();
  }
}

/** Streaming STT for any STT provider: batch-only ones transcribe once the audio has ended. */
export async function* sttStreamOf(
  provider: SttProvider,
  audio: AsyncIterable<Float32Array>,
  options: SttOptions,
): AsyncGenerator<Transcript> {
  if (provider.stream) {
    yield* provider.stream(audio, options);
    return;
  }
  const chunks: Float32Array[] = [];
  let length = 0;
  for await (const chunk of audio) {
    chunks.push(chunk);
    length += chunk.length;
  }
  const samples = new Float32Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    samples.set(chunk, offset);
    offset += chunk.length;
  }
  yield await provider.transcribe({ samples, sampleRate: 16_000 }, options);
}
