import { SpeechClient, type protos } from '@google-cloud/speech';
import { ProviderError } from '../../errors.js';
import type { PcmFloat, SttOptions, SttProvider, Transcript } from '../types.js';
import { float32ToInt16 } from '../../audio/frame.js';
import { AsyncChannel, abortedError, throwIfAborted } from '../local/streams.js';
import { GrpcStatus, clientOptions, mapGoogleError, type GoogleClientOptions } from './client.js';

type RecognizeStream = ReturnType<SpeechClient['_streamingRecognize']>;
type RecognizeResponse = protos.google.cloud.speech.v1.IStreamingRecognizeResponse;

interface Segment {
  readonly stream: RecognizeStream;
  readonly openedAt: number;
  /** A final result arrived and no newer interim one: the user is between turns. */
  turnEnded: boolean;
}

export interface GoogleSttOptions extends GoogleClientOptions {
  /** BCP-47 language when a call names none. Default `en-US`. */
  readonly language?: string;
  /** Recognition model (`latest_short`, `latest_long`, `phone_call`, ...). Default: Google's default. */
  readonly model?: string;
  readonly useEnhanced?: boolean;
  /** Default true. */
  readonly punctuation?: boolean;
  /** Interim hypotheses from `stream()`. Default true. */
  readonly interimResults?: boolean;
  /**
   * `stream()` ends after the first utterance (Google's single_utterance) instead of recognizing
   * until the audio ends. Default false (continuous).
   */
  readonly singleUtterance?: boolean;
  /**
   * Google closes a stream after about 5 minutes. A continuous stream older than this is replaced by
   * a fresh one after the next final result, i.e. between turns. Default 240000 ms.
   */
  readonly restartAfterMs?: number;
  /** Hard limit: a stream this old is replaced even mid-utterance. Default 290000 ms. */
  readonly maxStreamMs?: number;
  /** Audio per request message for `transcribe()` (Google accepts up to 25 KB). Default 500 ms. */
  readonly chunkMs?: number;
  readonly client?: SpeechClient;
  readonly name?: string;
}

const RATE = 16_000;

/** Google Cloud Speech-to-Text v1 over gRPC StreamingRecognize. */
export class GoogleStt implements SttProvider {
  readonly name: string;
  readonly #client: SpeechClient;
  readonly #options: GoogleSttOptions;

  constructor(options: GoogleSttOptions = {}) {
    this.#client = options.client ?? new SpeechClient(clientOptions(options));
    this.#options = options;
    this.name = options.name ?? `google-stt${options.model ? `:${options.model}` : ''}`;
  }

  /** Streams one finished utterance and joins the final results. */
  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    throwIfAborted(options.signal, 'stt');
    if (audio.sampleRate !== RATE)
      throw new ProviderError('provider_failed', 'stt', `Google STT expects 16 kHz audio, got ${audio.sampleRate} Hz`);
    const step = Math.max(160, Math.round(((this.#options.chunkMs ?? 500) / 1000) * RATE));
    async function* chunks(): AsyncGenerator<Float32Array> {
      for (let i = 0; i < audio.samples.length; i += step) yield audio.samples.subarray(i, i + step);
    }
    const finals: Transcript[] = [];
    for await (const t of this.#recognize(chunks(), options, { interim: false, singleUtterance: false }))
      if (t.final) finals.push(t);
    const confidences = finals.flatMap((t) => (t.confidence === undefined ? [] : [t.confidence]));
    return {
      text: finals.map((t) => t.text.trim()).filter(Boolean).join(' '),
      final: true,
      ...(confidences.length ? { confidence: confidences.reduce((a, b) => a + b, 0) / confidences.length } : {}),
    };
  }

  stream(audio: AsyncIterable<Float32Array>, options: SttOptions): AsyncIterable<Transcript> {
    return this.#recognize(audio, options, {
      interim: this.#options.interimResults ?? true,
      singleUtterance: this.#options.singleUtterance ?? false,
    });
  }

  #recognize(
    audio: AsyncIterable<Float32Array>,
    options: SttOptions,
    mode: { interim: boolean; singleUtterance: boolean },
  ): AsyncIterable<Transcript> {
    const o = this.#options;
    const request: protos.google.cloud.speech.v1.IStreamingRecognizeRequest = {
      streamingConfig: {
        config: {
          encoding: 'LINEAR16',
          sampleRateHertz: RATE,
          audioChannelCount: 1,
          languageCode: options.language ?? o.language ?? 'en-US',
          enableAutomaticPunctuation: o.punctuation ?? true,
          ...(o.model === undefined ? {} : { model: o.model }),
          ...(o.useEnhanced === undefined ? {} : { useEnhanced: o.useEnhanced }),
        },
        interimResults: mode.interim,
        singleUtterance: mode.singleUtterance,
      },
    };
    return new Recognition(this.#client, request, audio, options.signal, {
      singleUtterance: mode.singleUtterance,
      restartAfterMs: o.restartAfterMs ?? 240_000,
      maxStreamMs: o.maxStreamMs ?? 290_000,
    }).results;
  }
}

/**
 * One `stream()` call: pumps audio into a gRPC stream ("segment") and turns responses into
 * transcripts. Continuous recognition replaces the segment between turns once it gets old, so the
 * ~5-minute limit of a Google stream never cuts a user off; single-utterance recognition ends with
 * the first final result.
 */
class Recognition {
  readonly results: AsyncChannel<Transcript>;
  readonly #client: SpeechClient;
  readonly #request: protos.google.cloud.speech.v1.IStreamingRecognizeRequest;
  readonly #audio: AsyncIterator<Float32Array>;
  readonly #signal: AbortSignal;
  readonly #limits: { singleUtterance: boolean; restartAfterMs: number; maxStreamMs: number };
  readonly #segments = new Set<RecognizeStream>();
  #current: Segment | undefined;
  #audioDone = false;
  #stopped = false;

  constructor(
    client: SpeechClient,
    request: protos.google.cloud.speech.v1.IStreamingRecognizeRequest,
    audio: AsyncIterable<Float32Array>,
    signal: AbortSignal,
    limits: { singleUtterance: boolean; restartAfterMs: number; maxStreamMs: number },
  ) {
    this.#client = client;
    this.#request = request;
    this.#audio = audio[Symbol.asyncIterator]();
    this.#signal = signal;
    this.#limits = limits;
    this.results = new AsyncChannel<Transcript>(() => this.#stop());
    if (signal.aborted) {
      this.results.fail(abortedError('stt', signal.reason));
      return;
    }
    signal.addEventListener('abort', this.#onAbort, { once: true });
    void this.#pump();
  }

  readonly #onAbort = (): void => {
    this.results.fail(abortedError('stt', this.#signal.reason));
    this.#stop();
  };

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#signal.removeEventListener('abort', this.#onAbort);
    for (const stream of this.#segments) stream.cancel();
    this.#segments.clear();
    void Promise.resolve(this.#audio.return?.()).catch(() => {});
  }

  #fail(error: unknown): void {
    this.results.fail(mapGoogleError(error, 'stt', this.#signal));
    this.#stop();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.#audio.next();
        if (this.#stopped || this.#audioDone) return; // stopped, or single utterance already over
        if (next.done) break;
        if (next.value.length === 0) continue;
        const segment = this.#segmentFor();
        const pcm = float32ToInt16(next.value);
        segment.stream.write({ audioContent: Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength) });
      }
      this.#audioDone = true;
      if (this.#current) this.#current.stream.end();
      else this.#finishIfIdle();
    } catch (error) {
      if (!this.#stopped) this.#fail(error);
    }
  }

  /** The segment to write to, opening or replacing it as the stream limits require. */
  #segmentFor(): Segment {
    const current = this.#current;
    const age = current ? Date.now() - current.openedAt : 0;
    const rotate = current && ((current.turnEnded && age >= this.#limits.restartAfterMs) || age >= this.#limits.maxStreamMs);
    if (current && !rotate) return current;
    if (current) current.stream.end(); // half-close: it still delivers what it has recognized
    const stream = this.#client._streamingRecognize();
    const segment: Segment = { stream, openedAt: Date.now(), turnEnded: false };
    this.#segments.add(stream);
    this.#current = segment;
    stream.on('data', (response: RecognizeResponse) => this.#onResponse(segment, response));
    stream.on('error', (error: unknown) => this.#onSegmentError(segment, error));
    stream.on('end', () => this.#onSegmentEnd(segment));
    stream.write(this.#request);
    return segment;
  }

  #onResponse(segment: Segment, response: RecognizeResponse): void {
    if (this.#stopped) return;
    if (response.error && (response.error.code ?? 0) !== 0) {
      this.#onSegmentError(segment, Object.assign(new Error(response.error.message ?? 'recognition error'), { code: response.error.code }));
      return;
    }
    if (response.speechEventType === 'END_OF_SINGLE_UTTERANCE' || response.speechEventType === 1) {
      // Google heard the end of the utterance: stop sending audio, wait for the final result.
      this.#audioDone = true;
      segment.stream.end();
      void Promise.resolve(this.#audio.return?.()).catch(() => {});
      return;
    }
    const results = response.results ?? [];
    if (!Array.isArray(results)) {
      this.#fail(new ProviderError('provider_bad_response', 'stt', 'StreamingRecognizeResponse.results is not a list'));
      return;
    }
    if (results.length === 0) return;
    const finals = results.filter((r) => r.isFinal);
    for (const result of finals) {
      const best = result.alternatives?.[0];
      if (!best || typeof best.transcript !== 'string') {
        this.#fail(new ProviderError('provider_bad_response', 'stt', 'final result without a transcript'));
        return;
      }
      this.results.push({
        text: best.transcript.trim(),
        final: true,
        ...(typeof best.confidence === 'number' && best.confidence > 0 ? { confidence: best.confidence } : {}),
      });
      segment.turnEnded = true;
    }
    if (finals.length === 0) {
      // Interim: Google splits the hypothesis into a stable prefix and an unstable tail.
      const text = results.map((r) => r.alternatives?.[0]?.transcript ?? '').join('').trim();
      if (text) {
        segment.turnEnded = false;
        this.results.push({ text, final: false });
      }
    }
  }

  #onSegmentError(segment: Segment, error: unknown): void {
    this.#segments.delete(segment.stream);
    if (this.#stopped) return;
    const code = (error as { code?: unknown }).code;
    if (code === GrpcStatus.OUT_OF_RANGE && !this.#audioDone && !this.#limits.singleUtterance) {
      // Google's stream duration limit hit despite the rotation: continue on a fresh stream.
      if (this.#current === segment) this.#current = undefined;
      return;
    }
    this.#fail(error);
  }

  #onSegmentEnd(segment: Segment): void {
    this.#segments.delete(segment.stream);
    if (this.#current === segment) this.#current = undefined; // more audio opens a fresh stream
    this.#finishIfIdle();
  }

  #finishIfIdle(): void {
    if (this.#stopped || !this.#audioDone || this.#segments.size > 0) return;
    this.results.end();
    this.#stopped = true;
    this.#signal.removeEventListener('abort', this.#onAbort);
  }
}
