/**
 * The `vad` child actor of a session: a `fromCallback` logic that listens to the session's inbound
 * audio (mono 16 kHz Float32 frames of any length, see src/audio/inbound.ts) and sends back
 * `vad.speechStart`, `vad.speechEnd` and `vad.error`. Stopping the actor unsubscribes from the audio
 * and releases the stream's model state.
 */
import { fromCallback, type CallbackActorLogic, type EventObject } from 'xstate';
import { VadError } from '../errors.js';
import type { VadConfig } from './config.js';
import type { SharedVad } from './shared-vad.js';
import { VadStream, type VadEvent } from './vad-stream.js';

export interface VadActorOptions {
  /** Registers a listener for inbound 16 kHz mono frames; returns the unsubscribe function. */
  subscribe(listener: (frame: Float32Array) => void): () => void;
  readonly config?: Partial<VadConfig>;
  /** Defaults to the process-wide shared model. */
  readonly vad?: SharedVad;
  /** Also told about every error (after it was sent back as `vad.error`), e.g. for logging. */
  onError?(error: VadError): void;
}

export type { VadEvent };

/** Logic for the session's `vad` actor. The actor receives no events; it only sends them back. */
export function createVadActor(options: VadActorOptions): CallbackActorLogic<EventObject> {
  return fromCallback<EventObject>(({ sendBack }) => {
    const report = (error: VadError): void => {
      sendBack({ type: 'vad.error', error } satisfies VadEvent);
      try {
        options.onError?.(error);
      } catch {
        // An error hook must not break the audio path.
      }
    };
    const stream = new VadStream({
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(options.vad === undefined ? {} : { vad: options.vad }),
      onEvent: (event) => {
        if (event.type === 'vad.error') report(event.error);
        else sendBack(event);
      },
    });
    const unsubscribe = options.subscribe((frame) => {
      try {
        stream.push(frame);
      } catch (error) {
        report(error instanceof VadError ? error : new VadError('vad_inference_failed', 'bad VAD input frame', { cause: error }));
      }
    });
    return () => {
      unsubscribe();
      stream.close();
    };
  });
}
