import type OpenAI from 'openai';
import { toFile } from 'openai';
import { ProviderError } from '../../errors.js';
import type { PcmFloat, SttOptions, SttProvider, Transcript } from '../types.js';
import { float32ToInt16 } from '../../audio/frame.js';
import { encodeWav } from '../local/pcm.js';
import { linkedController, throwIfAborted } from '../local/streams.js';
import { createOpenAiClient, mapOpenAiError, type OpenAiClientOptions } from './client.js';

export interface OpenAiSttOptions extends OpenAiClientOptions {
  /** Default `gpt-4o-mini-transcribe` (`whisper-1` and compatible servers' model names work too). */
  readonly model?: string;
  /** Default language when a call names none (ISO 639-1, or a BCP-47 tag whose first part is used). */
  readonly language?: string;
  /** Vocabulary or context hints. */
  readonly prompt?: string;
  readonly temperature?: number;
  readonly name?: string;
}

/** Batch transcription through `/audio/transcriptions`: the utterance is uploaded as a WAV file. */
export class OpenAiStt implements SttProvider {
  readonly name: string;
  readonly model: string;
  readonly #client: OpenAI;
  readonly #options: OpenAiSttOptions;

  constructor(options: OpenAiSttOptions = {}) {
    this.#client = createOpenAiClient(options);
    this.#options = options;
    this.model = options.model ?? 'gpt-4o-mini-transcribe';
    this.name = options.name ?? `openai:${this.model}`;
  }

  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    throwIfAborted(options.signal, 'stt');
    const { controller, dispose } = linkedController(options.signal);
    const wav = encodeWav(float32ToInt16(audio.samples), audio.sampleRate);
    const language = options.language ?? this.#options.language;
    try {
      const result: unknown = await this.#client.audio.transcriptions.create(
        {
          file: await toFile(wav, 'utterance.wav', { type: 'audio/wav' }),
          model: this.model,
          response_format: 'json',
          ...(language === undefined ? {} : { language: language.split(/[-_]/)[0]!.toLowerCase() }),
          ...(this.#options.prompt === undefined ? {} : { prompt: this.#options.prompt }),
          ...(this.#options.temperature === undefined ? {} : { temperature: this.#options.temperature }),
        },
        { signal: controller.signal },
      );
      const text = (result as { text?: unknown } | null)?.text;
      if (typeof text !== 'string')
        throw new ProviderError('provider_bad_response', 'stt', 'transcription response has no text field');
      return { text: text.trim(), final: true };
    } catch (error) {
      throw mapOpenAiError(error, 'stt', options.signal);
    } finally {
      controller.abort();
      dispose();
    }
  }
}
