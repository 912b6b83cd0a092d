/**
 * The `vad` child actor of a session: a `fromCallback` logic that listens to the session's inbound
 * audio (mono 16 kHz Float32 frames of any length, see src/audio/inbound.ts) and sends back every
 * {@link VadEvent}: `vad.onset`, `vad.onsetCancelled`, `vad.speechStart`, `vad.speechPause`,
 * `vad.speechResume`, `vad.voiced`, `vad.speechEnd` and `vad.error`. Stopping the actor unsubscribes
 * from the audio and releases the stream's model state; `vad.reset` starts a fresh stream silently.
 *
 * The `vad.voiced` marks come from the actor's input when it has them, else from the options:
 *   spawnChild('vad', { id: 'vad', input: { voicedMarksMs: [minInterruptionMs] } })
 */
import { fromCallback, type CallbackActorLogic, type EventObject } from 'xstate';
import { VadError } from '../errors.js';
import type { VadConfig } from './config.js';
import type { AudioRecorder } from '../audio/recorder.js';
import type { SharedVad } from './shared-vad.js';
import { VadStream, type VadEvent } from './vad-stream.js';

export interface VadActorOptions {
  /** Registers a listener for inbound 16 kHz mono frames; returns the unsubscribe function. */
  subscribe(listener: (frame: Float32Array) => void): () => void;
  readonly config?: Partial<VadConfig>;
  /** Voiced durations (ms) at which to send `vad.voiced`; the actor's input overrides them. Default []. */
  readonly voicedMarksMs?: readonly number[];
  /** Defaults to the process-wide shared model. */
  readonly vad?: SharedVad;
  /** Also gets every frame, in the VAD's audio-stream time (reset when the stream reopens): what the recognizer reads. */
  readonly recorder?: AudioRecorder;
  /** Also told about every error (after it was sent back as `vad.error`), e.g. for logging. */
  onError?(error: VadError): void;
}

/** The `vad` actor's XState input (optional). */
export interface VadActorInput {
  /** Overrides {@link VadActorOptions.voicedMarksMs} when given. */
  readonly voicedMarksMs?: readonly number[];
}

export type { VadEvent };

/** Logic for the session's `vad` actor. It receives `vad.reset` (forget the utterance in progress) and sends back every VadEvent. */
export function createVadActor(options: VadActorOptions): CallbackActorLogic<EventObject, VadActorInput | undefined> {
  return fromCallback<EventObject, VadActorInput | undefined>(({ sendBack, receive, input }) => {
    const report = (error: VadError): void => {
      sendBack({ type: 'vad.error', error } satisfies VadEvent);
      try {
        options.onError?.(error);
      } catch {
        // An error hook must not break the audio path.
      }
    };
    const open = (): VadStream =>
      new VadStream({
        ...(options.config === undefined ? {} : { config: options.config }),
        ...(options.vad === undefined ? {} : { vad: options.vad }),
        voicedMarksMs: input?.voicedMarksMs ?? options.voicedMarksMs ?? [],
        onEvent: (event) => {
          if (event.type === 'vad.error') report(event.error);
          else sendBack(event);
        },
      });
    options.recorder?.reset();
    let stream = open();
    const unsubscribe = options.subscribe((frame) => {
      options.recorder?.write(frame);
      try {
        stream.push(frame);
      } catch (error) {
        report(error instanceof VadError ? error : new VadError('vad_inference_failed', 'bad VAD input frame', { cause: error }));
      }
    });
    // The audio it was hearing is gone (the transport dropped): forget the utterance in progress
    // and the model state, silently; the next audio starts a fresh stream.
    receive((event) => {
      if (event.type !== 'vad.reset') return;
      stream.close();
      options.recorder?.reset();
      stream = open();
    });
    return () => {
      unsubscribe();
      stream.close();
    };
  });
}
