/**
 * Opus encode/decode over @evan/opus (native prebuilt binding, WASM fallback). One encoder or decoder
 * per stream: Opus is stateful. Frames are PCM16, interleaved when stereo, of a duration Opus allows
 * (2.5, 5, 10, 20, 40 or 60 ms; 20 ms is what WebRTC sends).
 */
import { Decoder, Encoder } from '@evan/opus';
import { AudioFormatError } from '../errors.js';
import { assertChannels, type ChannelCount } from './frame.js';

export const OPUS_SAMPLE_RATES = [8000, 12000, 16000, 24000, 48000] as const;
export type OpusSampleRate = (typeof OPUS_SAMPLE_RATES)[number];

const FRAME_MS = [2.5, 5, 10, 20, 40, 60];
/** opus_defines.h; @evan/opus has the getter, but its typings misspell it. */
const OPUS_GET_LOOKAHEAD = 4027;

export interface OpusOptions {
  readonly sampleRate?: OpusSampleRate;
  readonly channels?: ChannelCount;
}

export interface OpusEncoderOptions extends OpusOptions {
  /** Target bitrate in bits/s; default 32 000 (wideband voice). */
  readonly bitrate?: number;
  readonly application?: 'voip' | 'audio' | 'restricted_lowdelay';
}

function checkRate(sampleRate: number): asserts sampleRate is OpusSampleRate {
  if (!(OPUS_SAMPLE_RATES as readonly number[]).includes(sampleRate)) {
    throw new AudioFormatError('audio_invalid_format', `Opus does not support ${sampleRate} Hz (use 8/12/16/24/48 kHz)`);
  }
}

export class OpusEncoder {
  readonly sampleRate: OpusSampleRate;
  readonly channels: ChannelCount;
  #encoder: Encoder | undefined;

  constructor(options: OpusEncoderOptions = {}) {
    const sampleRate = options.sampleRate ?? 48000;
    const channels = options.channels ?? 1;
    checkRate(sampleRate);
    assertChannels(channels);
    this.sampleRate = sampleRate;
    this.channels = channels;
    this.#encoder = new Encoder({ sample_rate: sampleRate, channels, application: options.application ?? 'voip' });
    this.#encoder.bitrate = options.bitrate ?? 32_000;
  }

  /**
   * The encoder's look-ahead in samples at `sampleRate` (OPUS_GET_LOOKAHEAD): how much a decoder's
   * output lags its input. Ogg Opus stores it as the stream's pre-skip.
   */
  get lookahead(): number {
    const encoder = this.#encoder;
    if (encoder === undefined) throw new AudioFormatError('audio_invalid_format', 'Opus encoder is closed');
    return encoder.ctl(OPUS_GET_LOOKAHEAD);
  }

  /** Encodes one frame of interleaved PCM16 into one Opus packet. */
  encode(pcm: Int16Array): Uint8Array {
    const encoder = this.#encoder;
    if (encoder === undefined) throw new AudioFormatError('audio_invalid_format', 'Opus encoder is closed');
    const perChannel = pcm.length / this.channels;
    const ms = (perChannel * 1000) / this.sampleRate;
    if (!Number.isInteger(perChannel) || !FRAME_MS.includes(ms)) {
      throw new AudioFormatError(
        'audio_invalid_format',
        `Opus frames must last 2.5/5/10/20/40/60 ms; got ${pcm.length} samples (${ms} ms at ${this.sampleRate} Hz, ${this.channels} ch)`,
      );
    }
    return encoder.encode(pcm);
  }

  close(): void {
    this.#encoder = undefined;
  }
}

export class OpusDecoder {
  readonly sampleRate: OpusSampleRate;
  readonly channels: ChannelCount;
  #decoder: Decoder | undefined;

  constructor(options: OpusOptions = {}) {
    const sampleRate = options.sampleRate ?? 48000;
    const channels = options.channels ?? 1;
    checkRate(sampleRate);
    assertChannels(channels);
    this.sampleRate = sampleRate;
    this.channels = channels;
    this.#decoder = new Decoder({ sample_rate: sampleRate, channels });
  }

  /** Decodes one packet into interleaved PCM16. A corrupt packet is an `audio_invalid_format` error. */
  decode(packet: Uint8Array): Int16Array {
    const decoder = this.#decoder;
    if (decoder === undefined) throw new AudioFormatError('audio_invalid_format', 'Opus decoder is closed');
    let bytes: Uint8Array;
    try {
      bytes = decoder.decode(packet);
    } catch (error) {
      throw new AudioFormatError('audio_invalid_format', 'corrupt Opus packet', { cause: error });
    }
    if (bytes.byteOffset % 2 === 0) return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
    return new Int16Array(bytes.slice().buffer);
  }

  close(): void {
    this.#decoder = undefined;
  }
}
