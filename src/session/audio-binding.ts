/**
 * The audio binding of one session: the only place where a transport meets the session's actors.
 *
 *   transport.onAudio → InboundPipeline (→ mono 16 kHz) → the session's `vad` child → machine events
 *   playout frames → transport.sendAudio;  reply cancelled → transport.clearOutput()
 *   transport.onPlaybackProgress → what the listener has heard (the playout's word accounting)
 *
 * It outlives transports: a session whose socket dropped keeps its binding, and the transport of
 * the resumed connection is attached to it. Nothing here knows the wire protocol.
 */
import type { AnyActorLogic } from 'xstate';
import { InboundPipeline } from '../audio/inbound.js';
import { AudioRecorder } from '../audio/recorder.js';
import type { Logger } from '../observability/logger.js';
import type { AudioTransport } from '../transport/audio-transport.js';
import { createVadActor } from '../vad/actor.js';
import { resolveVadConfig, type VadConfig } from '../vad/config.js';
import type { SharedVad } from '../vad/shared-vad.js';
import type { AudioSink } from './playout.js';

export interface AudioBindingOptions {
  /** Rate of the agent audio frames the playout produces (the transport's output rate). */
  readonly outputSampleRate: number;
  /** VAD settings and the shared model; `false` for a text-only session (no `vad` child). */
  readonly vad: { readonly config?: Partial<VadConfig>; readonly shared?: SharedVad } | false;
  readonly logger: Logger;
  /** Inbound audio that could not be used, a transport error, a VAD error (already sent to the machine). */
  readonly onError: (error: unknown) => void;
  /** Every outbound frame, after it was handed to the transport (turn metrics). */
  readonly onFrame?: (replyId: number) => void;
}

export class AudioBinding {
  readonly sink: AudioSink;
  /** The session's `vad` child, fed from whatever transport is attached; undefined when text-only. */
  readonly vadLogic: AnyActorLogic | undefined;
  /** The inbound audio in the VAD's stream time, which the session's recognizer reads. */
  readonly recorder = new AudioRecorder();
  /** The VAD's effective settings (undefined when text-only). */
  readonly vadConfig: VadConfig | undefined;
  readonly #options: AudioBindingOptions;
  readonly #vadListeners = new Set<(frame: Float32Array) => void>();
  #transport: AudioTransport | undefined;
  #cleanup: (() => void)[] = [];
  /** The client's last playback report (websocket audio). */
  #heard: { replyId: number; playedMs: number } | undefined;
  #closed = false;

  constructor(options: AudioBindingOptions) {
    this.#options = options;
    this.sink = {
      sampleRate: options.outputSampleRate,
      send: (frame, meta) => {
        this.#transport?.sendAudio(frame);
        options.onFrame?.(meta.replyId);
      },
      clear: () => this.#transport?.clearOutput() ?? 0,
      heardMs: (replyId) => (this.#heard !== undefined && this.#heard.replyId === replyId ? this.#heard.playedMs : undefined),
    };
    const vad = options.vad;
    this.vadConfig = vad === false ? undefined : resolveVadConfig(vad.config);
    this.vadLogic =
      vad === false
        ? undefined
        : createVadActor({
            subscribe: (listener) => {
              this.#vadListeners.add(listener);
              return () => this.#vadListeners.delete(listener);
            },
            ...(vad.config === undefined ? {} : { config: vad.config }),
            ...(vad.shared === undefined ? {} : { vad: vad.shared }),
            recorder: this.recorder,
            onError: (error) => options.logger.warn({ err: error }, 'VAD error'),
          });
  }

  get transport(): AudioTransport | undefined {
    return this.#transport;
  }

  /** Routes audio both ways through `transport`, replacing (and closing) any previous one. */
  attach(transport: AudioTransport): void {
    if (this.#closed) {
      void transport.close();
      return;
    }
    this.detach();
    this.#transport = transport;
    const inbound = new InboundPipeline({ sampleRate: transport.inputFormat.sampleRate });
    this.#cleanup.push(
      transport.onAudio((pcm) => {
        if (this.#vadListeners.size === 0) return;
        let frame: Float32Array;
        try {
          frame = inbound.push(pcm);
        } catch (error) {
          this.#options.onError(error);
          return;
        }
        for (const listener of this.#vadListeners) listener(frame);
      }),
      transport.onError((error) => this.#options.onError(error)),
      transport.onPlaybackProgress?.((progress) => {
        const replyId = Number(progress.replyId);
        if (Number.isInteger(replyId)) this.#heard = { replyId, playedMs: progress.playedMs };
      }) ?? (() => undefined),
      () => inbound.close(),
    );
  }

  /** Closes the current transport (the client went away); the binding waits for the next one. */
  detach(): void {
    for (const cleanup of this.#cleanup.splice(0)) cleanup();
    const transport = this.#transport;
    this.#transport = undefined;
    if (transport !== undefined) void transport.close();
  }

  /** The session ended. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.detach();
    this.#vadListeners.clear();
  }
}
