import { TextToSpeechClient, type protos } from '@google-cloud/text-to-speech';
import { ProviderError } from '../../errors.js';
import type { TtsChunk, TtsOptions, TtsProvider } from '../types.js';
import { bytesToInt16 } from '../../audio/frame.js';
import { decodeWav, isWav, slicePcm } from '../local/pcm.js';
import { abortedError, throwIfAborted } from '../local/streams.js';
import { clientOptions, mapGoogleError, type GoogleClientOptions } from './client.js';

type SynthesizeRequest = protos.google.cloud.texttospeech.v1.ISynthesizeSpeechRequest;
type SynthesizeResponse = protos.google.cloud.texttospeech.v1.ISynthesizeSpeechResponse;
/** google-gax's cancellable promise (what `innerApiCalls` return). */
type CancellablePromise<T> = Promise<T> & { cancel(): void };

export interface GoogleTtsOptions extends GoogleClientOptions {
  /** BCP-47 language. Default `en-US`. */
  readonly language?: string;
  /** Voice name (e.g. `en-US-Neural2-F`); a call's `voice` option wins. Default: Google picks. */
  readonly voice?: string;
  /** Requested LINEAR16 rate. Default 24000. The rate reported is the one in Google's WAV header. */
  readonly sampleRate?: number;
  /** 0.25 to 4.0. */
  readonly speakingRate?: number;
  /** Semitones, -20 to 20. */
  readonly pitch?: number;
  /** Size of the chunks handed out. Default 200 ms. */
  readonly chunkMs?: number;
  readonly client?: TextToSpeechClient;
  readonly name?: string;
}

/**
 * Google Cloud Text-to-Speech v1 `SynthesizeSpeech` as LINEAR16. Text that starts with `<speak>`
 * is sent as SSML. Google wraps LINEAR16 in a WAV header; it is stripped and its rate reported.
 */
export class GoogleTts implements TtsProvider {
  readonly name: string;
  readonly #client: TextToSpeechClient;
  readonly #options: GoogleTtsOptions;

  constructor(options: GoogleTtsOptions = {}) {
    this.#client = options.client ?? new TextToSpeechClient(clientOptions(options));
    this.#options = options;
    this.name = options.name ?? `google-tts${options.voice ? `:${options.voice}` : ''}`;
  }

  synthesize(text: string, options: TtsOptions): AsyncIterable<TtsChunk> {
    return this.#synthesize(text, options);
  }

  async *#synthesize(text: string, options: TtsOptions): AsyncGenerator<TtsChunk> {
    throwIfAborted(options.signal, 'tts');
    const trimmed = text.trim();
    if (trimmed === '') return;
    const o = this.#options;
    const requestedRate = o.sampleRate ?? 24_000;
    const voice = options.voice ?? o.voice;
    const request: SynthesizeRequest = {
      input: trimmed.startsWith('<speak>') ? { ssml: trimmed } : { text: trimmed },
      voice: { languageCode: o.language ?? 'en-US', ...(voice === undefined ? {} : { name: voice }) },
      audioConfig: {
        audioEncoding: 'LINEAR16',
        sampleRateHertz: requestedRate,
        ...(o.speakingRate === undefined ? {} : { speakingRate: o.speakingRate }),
        ...(o.pitch === undefined ? {} : { pitch: o.pitch }),
      },
    };
    const response = await this.#call(request, options.signal);
    const audio = response.audioContent;
    if (!(audio instanceof Uint8Array) && typeof audio !== 'string')
      throw new ProviderError('provider_bad_response', 'tts', 'SynthesizeSpeechResponse has no audioContent');
    const bytes = typeof audio === 'string' ? Buffer.from(audio, 'base64') : audio;
    let pcm: Int16Array;
    let sampleRate = requestedRate;
    if (isWav(bytes)) {
      const wav = decodeWav(bytes, 'tts');
      pcm = wav.pcm;
      sampleRate = wav.sampleRate;
    } else {
      if (bytes.length % 2 !== 0)
        throw new ProviderError('provider_bad_response', 'tts', 'LINEAR16 audio with an odd number of bytes');
      pcm = bytesToInt16(bytes);
    }
    if (pcm.length === 0) throw new ProviderError('provider_bad_response', 'tts', 'Google returned no audio');
    for (const slice of slicePcm(pcm, (sampleRate * (o.chunkMs ?? 200)) / 1000)) {
      throwIfAborted(options.signal, 'tts');
      yield { pcm: slice, sampleRate };
    }
  }

  async #call(request: SynthesizeRequest, signal: AbortSignal): Promise<SynthesizeResponse> {
    try {
      await this.#client.initialize();
      throwIfAborted(signal, 'tts');
      // innerApiCalls returns gax's cancellable promise (the public method's `.then` loses cancel()).
      // Retries are off here: they belong to withResilience.
      const call = this.#client.innerApiCalls['synthesizeSpeech']!(request, { retry: null }) as CancellablePromise<
        [SynthesizeResponse, unknown, unknown]
      >;
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const [response] = await call;
        if (!response || typeof response !== 'object')
          throw new ProviderError('provider_bad_response', 'tts', 'empty SynthesizeSpeechResponse');
        return response;
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } catch (error) {
      if (signal.aborted) throw abortedError('tts', error);
      throw mapGoogleError(error, 'tts', signal);
    }
  }
}
