import type OpenAI from 'openai';
import { ProviderError } from '../../errors.js';
import type { TtsChunk, TtsOptions, TtsProvider } from '../types.js';
import { bytesToInt16 } from '../../audio/frame.js';
import { linkedController, throwIfAborted } from '../local/streams.js';
import { createOpenAiClient, mapOpenAiError, type OpenAiClientOptions } from './client.js';

export interface OpenAiTtsOptions extends OpenAiClientOptions {
  /** Default `gpt-4o-mini-tts`. */
  readonly model?: string;
  /** Default `alloy`; a call's `voice` option wins. */
  readonly voice?: string;
  /** 0.25 to 4.0. */
  readonly speed?: number;
  /** Style instructions (gpt-4o-mini-tts only). */
  readonly instructions?: string;
  /**
   * The rate of the PCM the endpoint returns. OpenAI's `pcm` format is 24 kHz mono PCM16; change it
   * only for a compatible server documented to return another rate.
   */
  readonly sampleRate?: number;
  readonly name?: string;
}

/** `/audio/speech` with `response_format: 'pcm'`, yielding PCM as the bytes arrive. */
export class OpenAiTts implements TtsProvider {
  readonly name: string;
  readonly model: string;
  readonly sampleRate: number;
  readonly #client: OpenAI;
  readonly #options: OpenAiTtsOptions;

  constructor(options: OpenAiTtsOptions = {}) {
    this.#client = createOpenAiClient(options);
    this.#options = options;
    this.model = options.model ?? 'gpt-4o-mini-tts';
    this.sampleRate = options.sampleRate ?? 24_000;
    this.name = options.name ?? `openai:${this.model}`;
  }

  synthesize(text: string, options: TtsOptions): AsyncIterable<TtsChunk> {
    return this.#synthesize(text, options);
  }

  async *#synthesize(text: string, options: TtsOptions): AsyncGenerator<TtsChunk> {
    throwIfAborted(options.signal, 'tts');
    if (text.trim() === '') return;
    const { controller, dispose } = linkedController(options.signal);
    const o = this.#options;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const response = await this.#client.audio.speech.create(
        {
          model: this.model,
          input: text,
          voice: options.voice ?? o.voice ?? 'alloy',
          response_format: 'pcm',
          ...(o.speed === undefined ? {} : { speed: o.speed }),
          ...(o.instructions === undefined ? {} : { instructions: o.instructions }),
        },
        { signal: controller.signal },
      );
      const type = response.headers.get('content-type') ?? '';
      if (/json|text|html/i.test(type))
        throw new ProviderError('provider_bad_response', 'tts', `speech endpoint answered ${type.split(';')[0]} instead of audio`);
      if (!response.body) throw new ProviderError('provider_bad_response', 'tts', 'speech response has no body');
      reader = response.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      let carry: number | undefined; // a PCM16 sample split across two network chunks
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let bytes = value;
        if (carry !== undefined && bytes.length > 0) {
          const joined = new Uint8Array(bytes.length + 1);
          joined[0] = carry;
          joined.set(bytes, 1);
          bytes = joined;
          carry = undefined;
        }
        if (bytes.length % 2 === 1) {
          carry = bytes[bytes.length - 1];
          bytes = bytes.subarray(0, bytes.length - 1);
        }
        if (bytes.length > 0) yield { pcm: bytesToInt16(bytes), sampleRate: this.sampleRate };
      }
      reader = undefined;
    } catch (error) {
      throw mapOpenAiError(error, 'tts', options.signal);
    } finally {
      controller.abort();
      if (reader) void reader.cancel().catch(() => {});
      dispose();
    }
  }
}
