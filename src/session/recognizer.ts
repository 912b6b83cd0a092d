/**
 * The session's `stt` child: speech recognition of each user turn, from the onset on.
 *
 * The machine opens an utterance at `vad.onset` (`stt.open`), hints pauses (`stt.pause`), and ends
 * it at its end-of-turn decision (`stt.finish`) or forgets it (`stt.discard`: a cancelled onset, a
 * backchannel, a dropped transport). Audio comes from the session's AudioRecorder, starting
 * `prefixPaddingMs` before the onset, so nothing the user said is cut off.
 *
 * - A provider with `stream()` hears the audio while the user speaks; its results become
 *   `stt.partial` (the turn's text so far: final segments joined, then the interim tail), and after
 *   `stt.finish` the joined final segments are the turn's `stt.final`.
 * - A batch-only provider transcribes the buffered utterance after `stt.finish`.
 * - A stream that fails before its final falls back, once, to batch transcription of the buffered
 *   utterance (`stt.warning` tells the machine); one that does not end within `sttTimeoutMs` after
 *   `stt.finish` is aborted, and its text so far (if any) is used.
 */
import { fromCallback } from 'xstate';
import type { RecognizerCommand, RecognizerEvent, RecognizerInput } from '../../machines/session.js';
import type { AudioRecorder } from '../audio/recorder.js';
import { type Clock, realClock } from '../clock.js';
import { isAbortError, ProviderError } from '../errors.js';
import type { PcmFloat, SttProvider, SttStreamOptions } from '../providers/types.js';
import { applyGuard, describeError, type Guard } from './actors.js';

export interface RecognizerOptions {
  readonly stt: SttProvider;
  readonly recorder: AudioRecorder;
  /** Audio before the onset that belongs to the utterance (the VAD's prefixPaddingMs). */
  readonly prefixPaddingMs: number;
  /** How long after `stt.finish` the final may take before the stream is given up. */
  readonly sttTimeoutMs: number;
  readonly language?: string;
  readonly guard?: Guard;
  readonly clock?: Clock;
}

interface Utterance {
  readonly id: number;
  readonly controller: AbortController;
  readonly stop: () => void;
  /** Every chunk heard so far (batch transcription, the fallback, the turn detector). */
  readonly chunks: Float32Array[];
  samples: number;
  readonly segments: string[];
  interim: string;
  /** What was last told to the machine, to send changes only. */
  told: string;
  toldStable: boolean;
  finished: boolean;
  /** The audio has been read to its end (after stt.finish). */
  drained: Promise<void>;
  readonly pauseListeners: (() => void)[];
  /** The streaming call, when the provider streams: how it ended. */
  streamed?: Promise<'ended' | 'aborted' | 'failed'>;
}

/** The text of an utterance: its final segments, then the interim tail. */
function joined(u: Pick<Utterance, 'segments' | 'interim'>): string {
  return [...u.segments, u.interim].map((part) => part.trim()).filter((part) => part.length > 0).join(' ');
}

function concat(chunks: readonly Float32Array[], samples: number): PcmFloat {
  const out = new Float32Array(samples);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return { samples: out, sampleRate: 16_000 };
}

/** The recognizer logic and a way for the session's turn detector to read an utterance's audio. */
export function createRecognizer(options: RecognizerOptions) {
  const clock = options.clock ?? realClock;
  const live = new Map<number, Utterance>();
  const logic = fromCallback<RecognizerCommand, RecognizerInput>(({ sendBack, receive }) => {
    const send = (event: RecognizerEvent): void => sendBack(event);

    const tell = (u: Utterance, stable: boolean): void => {
      const text = joined(u);
      if (u.finished || (text === u.told && stable === u.toldStable)) return;
      u.told = text;
      u.toldStable = stable;
      send({ type: 'stt.partial', utterance: u.id, text, stable, atMs: options.recorder.positionMs });
    };

    // Where the last finished utterance's audio ended: the padding of the next one never reaches
    // back into it (its words were already transcribed). Positions restart when the recorder does.
    let finishedAtMs = 0;
    const open = (id: number, atMs: number): void => {
      if (live.has(id)) return;
      const controller = new AbortController();
      if (finishedAtMs > options.recorder.positionMs) finishedAtMs = 0;
      const reader = options.recorder.read(Math.max(atMs - options.prefixPaddingMs, Math.min(finishedAtMs, atMs)));
      const u: Utterance = {
        id,
        controller,
        stop: reader.stop,
        chunks: [],
        samples: 0,
        segments: [],
        interim: '',
        told: '',
        toldStable: true,
        finished: false,
        drained: Promise.resolve(),
        pauseListeners: [],
      };
      live.set(id, u);
      // Every chunk is kept; a streaming provider also hears it as it comes.
      let deliver: ((chunk: Float32Array | undefined) => void) | undefined;
      const queue: (Float32Array | undefined)[] = [];
      u.drained = (async () => {
        for await (const chunk of reader.chunks) {
          if (controller.signal.aborted) return;
          u.chunks.push(chunk);
          u.samples += chunk.length;
          if (deliver) deliver(chunk);
          else queue.push(chunk);
        }
        if (deliver) deliver(undefined);
        else queue.push(undefined);
      })();
      const stream = options.stt.stream?.bind(options.stt);
      if (stream === undefined) return;
      async function* audio(): AsyncGenerator<Float32Array> {
        for (;;) {
          const next = queue.length > 0 ? queue.shift() : await new Promise<Float32Array | undefined>((resolve) => (deliver = resolve));
          deliver = undefined;
          if (next === undefined || controller.signal.aborted) return;
          yield next;
        }
      }
      const streamOptions: SttStreamOptions = {
        signal: controller.signal,
        ...(options.language === undefined ? {} : { language: options.language }),
        onPause: (listener) => u.pauseListeners.push(listener),
      };
      u.streamed = (async () => {
        try {
          for await (const result of stream(audio(), streamOptions)) {
            if (controller.signal.aborted) return 'aborted';
            const text = result.text.trim();
            if (result.final) {
              if (text.length > 0) u.segments.push(text);
              u.interim = '';
              tell(u, true);
            } else {
              u.interim = text;
              tell(u, false);
            }
          }
          return 'ended';
        } catch (error) {
          if (controller.signal.aborted || isAbortError(error)) return 'aborted';
          const { code, message } = describeError(error);
          send({ type: 'stt.warning', utterance: id, error: { code, message: `${message}; falling back to batch transcription`, provider: 'stt' } });
          return 'failed';
        }
      })();
    };

    const finish = async (u: Utterance): Promise<void> => {
      finishedAtMs = options.recorder.positionMs;
      u.stop();
      const signal = u.controller.signal;
      let text: string;
      try {
        const result = u.streamed === undefined ? 'batch' : await withTimeout(u.streamed, options.sttTimeoutMs, clock);
        if (signal.aborted) return;
        u.finished = true;
        if (result === 'ended') text = joined(u);
        else if (result === 'timeout' && joined(u).length > 0) {
          u.controller.abort();
          text = joined(u);
        } else {
          if (result === 'timeout') {
            u.controller.abort();
            send({
              type: 'stt.warning',
              utterance: u.id,
              error: { code: 'provider_timeout', message: `the recognizer gave no final within ${options.sttTimeoutMs} ms; falling back to batch transcription`, provider: 'stt' },
            });
          }
          // Batch: the whole utterance, once (also the fallback of a failed or hung stream).
          await u.drained;
          const batch = new AbortController();
          let timedOut = false;
          const timer = clock.setTimeout(() => {
            timedOut = true;
            batch.abort();
          }, options.sttTimeoutMs);
          const onAbort = (): void => batch.abort();
          u.controller.signal.addEventListener('abort', onAbort, { once: true });
          try {
            const audio = concat(u.chunks, u.samples);
            const transcript = await options.stt.transcribe(audio, { signal: batch.signal, ...(options.language === undefined ? {} : { language: options.language }) }).catch((error: unknown) => {
              if (timedOut) {
                throw new ProviderError('provider_timeout', 'stt', `batch transcription took longer than ${options.sttTimeoutMs} ms`, { cause: error });
              }
              throw error;
            });
            text = transcript.text.trim();
          } finally {
            clock.clearTimeout(timer);
            u.controller.signal.removeEventListener('abort', onAbort);
          }
        }
        if (!live.has(u.id)) return;
        const guarded = await applyGuard(options.guard, { kind: 'user', text }, signal);
        if (!live.has(u.id)) return;
        live.delete(u.id);
        send({ type: 'stt.final', utterance: u.id, text: guarded });
      } catch (error) {
        if (!live.has(u.id)) return;
        live.delete(u.id);
        u.controller.abort();
        send({ type: 'stt.failed', utterance: u.id, error: { provider: 'stt', ...describeError(error) } });
      }
    };

    const discard = (u: Utterance): void => {
      live.delete(u.id);
      u.finished = true;
      u.controller.abort();
      u.stop();
    };

    receive((command) => {
      switch (command.type) {
        case 'stt.open':
          open(command.utterance, command.atMs);
          break;
        case 'stt.pause': {
          const u = live.get(command.utterance);
          if (u !== undefined && !u.finished) for (const listener of u.pauseListeners) listener();
          break;
        }
        case 'stt.finish': {
          const u = live.get(command.utterance);
          if (u !== undefined && !u.finished) void finish(u);
          break;
        }
        case 'stt.discard':
          for (const u of [...live.values()]) if (command.utterance === undefined || u.id === command.utterance) discard(u);
          break;
      }
    });
    return () => {
      for (const u of [...live.values()]) discard(u);
    };
  });
  return {
    logic,
    /** The audio heard so far of an open utterance (for the turn detector). */
    audioOf(utterance: number): PcmFloat {
      const u = live.get(utterance);
      return u === undefined ? { samples: new Float32Array(0), sampleRate: 16_000 } : concat(u.chunks, u.samples);
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, clock: Clock): Promise<T | 'timeout'> {
  let timer: unknown;
  try {
    return await Promise.race([promise, new Promise<'timeout'>((resolve) => (timer = clock.setTimeout(() => resolve('timeout'), ms)))]);
  } finally {
    clock.clearTimeout(timer);
  }
}
