/**
 * Ogg Opus (RFC 7845) on top of src/audio/ogg.ts and the project's Opus codec (@evan/opus).
 *
 * `OggOpusWriter` turns a live stream of mono PCM16 into one Ogg Opus stream: an `OpusHead` page, an
 * `OpusTags` page, then audio pages of 20 ms packets (application `voip`). Granule positions count
 * 48 kHz samples whatever the input rate, starting with the encoder's look-ahead as pre-skip; the last
 * page's granule trims the padding of the final packet, so a decoder returns exactly the samples
 * that went in. Every `push` returns the pages its audio completed, at once: nothing waits for a page
 * to fill.
 *
 * `OggOpusReader` is the other side: bytes in any pieces → PCM16 at the rate asked for, with the
 * pre-skip dropped and the end trimmed as the last page's granule says.
 */
import { randomInt } from 'node:crypto';
import { AudioFormatError } from '../errors.js';
import { concatArrays } from './frame.js';
import { concatBytes, OGG_FLAGS, OggPageReader, OggPageWriter, type OggPacket } from './ogg.js';
import { OPUS_SAMPLE_RATES, OpusDecoder, OpusEncoder, type OpusSampleRate } from './opus.js';

/** Granule positions are in 48 kHz samples (RFC 7845 §4). */
const GRANULE_RATE = 48_000;
const FRAME_MS = 20;
const OPUS_HEAD = new TextEncoder().encode('OpusHead');
const OPUS_TAGS = new TextEncoder().encode('OpusTags');
const VENDOR = new TextEncoder().encode('voxstate');

function fail(message: string): never {
  throw new AudioFormatError('audio_invalid_format', `Ogg Opus: ${message}`);
}

export function isOpusSampleRate(rate: number): rate is OpusSampleRate {
  return (OPUS_SAMPLE_RATES as readonly number[]).includes(rate);
}

export interface OpusHead {
  readonly channels: number;
  /** 48 kHz samples to drop from the start of the decoded stream. */
  readonly preSkip: number;
  /** The rate of the audio before encoding (informational). */
  readonly inputSampleRate: number;
  readonly outputGain: number;
  readonly mappingFamily: number;
}

/** The identification header (RFC 7845 §5.1), mono, channel mapping family 0. */
export function opusHead(preSkip: number, inputSampleRate: number): Uint8Array {
  const out = new Uint8Array(19);
  const view = new DataView(out.buffer);
  out.set(OPUS_HEAD, 0);
  view.setUint8(8, 1); // version
  view.setUint8(9, 1); // channels
  view.setUint16(10, preSkip, true);
  view.setUint32(12, inputSampleRate, true);
  view.setInt16(16, 0, true); // output gain
  view.setUint8(18, 0); // mapping family 0: mono or stereo, no table
  return out;
}

/** The comment header (RFC 7845 §5.2): the vendor string and no comments. */
export function opusTags(): Uint8Array {
  const out = new Uint8Array(8 + 4 + VENDOR.length + 4);
  const view = new DataView(out.buffer);
  out.set(OPUS_TAGS, 0);
  view.setUint32(8, VENDOR.length, true);
  out.set(VENDOR, 12);
  view.setUint32(12 + VENDOR.length, 0, true);
  return out;
}

function startsWith(bytes: Uint8Array, magic: Uint8Array): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i += 1) if (bytes[i] !== magic[i]) return false;
  return true;
}

export function parseOpusHead(packet: Uint8Array): OpusHead {
  if (!startsWith(packet, OPUS_HEAD) || packet.length < 19) fail('the first packet is not an OpusHead header');
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = view.getUint8(8);
  if (version >> 4 !== 0) fail(`OpusHead version ${version} is not supported`);
  const channels = view.getUint8(9);
  const mappingFamily = view.getUint8(18);
  if (channels === 0) fail('OpusHead declares 0 channels');
  if (mappingFamily === 0 && channels > 2) fail(`mapping family 0 allows 1 or 2 channels, not ${channels}`);
  if (mappingFamily !== 0) fail(`channel mapping family ${mappingFamily} is not supported (only 0: mono or stereo)`);
  return { channels, preSkip: view.getUint16(10, true), inputSampleRate: view.getUint32(12, true), outputGain: view.getInt16(16, true), mappingFamily };
}

export interface OggOpusWriterOptions {
  /** Rate of the PCM pushed in; Opus encodes 8/12/16/24/48 kHz. */
  readonly sampleRate: OpusSampleRate;
  /** Opus bitrate in bits/s. Default 32 000. */
  readonly bitrate?: number;
  /** The stream's serial number. Default: random (RFC 3533 wants serials unique per stream). */
  readonly serial?: number;
}

/** One mono Ogg Opus stream, encoded as the audio arrives. */
export class OggOpusWriter {
  readonly sampleRate: OpusSampleRate;
  readonly #encoder: OpusEncoder;
  readonly #pages: OggPageWriter;
  readonly #frame: number;
  /** 48 kHz samples per input sample (an integer for every Opus rate). */
  readonly #scale: number;
  readonly #preSkip: number;
  readonly #pending: Int16Array;
  #pendingLength = 0;
  #headersWritten = false;
  /** Input samples pushed so far. */
  #samplesIn = 0;
  /** Granule position reached by the packets written (48 kHz, pre-skip included). */
  #granule = 0n;

  constructor(options: OggOpusWriterOptions) {
    if (!isOpusSampleRate(options.sampleRate)) fail(`Opus does not encode ${String(options.sampleRate)} Hz (use 8/12/16/24/48 kHz)`);
    this.sampleRate = options.sampleRate;
    this.#encoder = new OpusEncoder({ sampleRate: options.sampleRate, channels: 1, application: 'voip', bitrate: options.bitrate ?? 32_000 });
    this.#pages = new OggPageWriter(options.serial ?? randomInt(0, 0x1_0000_0000));
    this.#frame = (options.sampleRate * FRAME_MS) / 1000;
    this.#scale = GRANULE_RATE / options.sampleRate;
    this.#preSkip = this.#encoder.lookahead * this.#scale;
    this.#pending = new Int16Array(this.#frame);
  }

  /** 48 kHz samples a decoder drops from the start (the encoder's look-ahead). */
  get preSkip(): number {
    return this.#preSkip;
  }

  get serial(): number {
    return this.#pages.serial;
  }

  get ended(): boolean {
    return this.#pages.ended;
  }

  /** The header pages, the first time (a stream starts with them even before any audio). */
  #headers(): Uint8Array[] {
    if (this.#headersWritten) return [];
    this.#headersWritten = true;
    // OpusHead alone on the first page (BOS), OpusTags on the next one (RFC 7845 §3).
    return [
      this.#pages.write([{ data: opusHead(this.#preSkip, this.sampleRate), granule: 0n }], { bos: true }),
      this.#pages.write([{ data: opusTags(), granule: 0n }]),
    ];
  }

  #encodeFrame(frame: Int16Array): OggPacket {
    const data = this.#encoder.encode(frame);
    this.#granule += BigInt(this.#frame * this.#scale);
    return { data, granule: this.#granule };
  }

  /** Encodes the complete 20 ms frames of `pcm` (the rest waits for more) and returns their pages. */
  push(pcm: Int16Array): Uint8Array {
    if (this.ended) fail('the stream has ended');
    const out = this.#headers();
    this.#samplesIn += pcm.length;
    const packets: OggPacket[] = [];
    let offset = 0;
    while (offset < pcm.length) {
      const take = Math.min(this.#frame - this.#pendingLength, pcm.length - offset);
      this.#pending.set(pcm.subarray(offset, offset + take), this.#pendingLength);
      this.#pendingLength += take;
      offset += take;
      if (this.#pendingLength === this.#frame) {
        packets.push(this.#encodeFrame(this.#pending));
        this.#pendingLength = 0;
      }
    }
    if (packets.length > 0) out.push(this.#pages.write(packets));
    return concatBytes(out);
  }

  /**
   * Ends the stream: the buffered samples and the encoder's look-ahead are flushed with silence, and
   * the last page (EOS) carries the granule of the last real sample, so the padding is trimmed.
   */
  end(): Uint8Array {
    if (this.ended) return new Uint8Array(0);
    const out = this.#headers();
    const total = BigInt(this.#preSkip + this.#samplesIn * this.#scale);
    const packets: OggPacket[] = [];
    while (this.#granule < total || this.#pendingLength > 0) {
      this.#pending.fill(0, this.#pendingLength);
      this.#pendingLength = 0;
      packets.push(this.#encodeFrame(this.#pending));
    }
    const last = packets.at(-1);
    // The last packet's granule says how much of it is real audio (end trimming, RFC 7845 §4.4).
    if (last !== undefined) packets[packets.length - 1] = { data: last.data, granule: total };
    out.push(this.#pages.write(packets, { eos: true }));
    this.#encoder.close();
    return concatBytes(out);
  }

  /**
   * Ends the stream at once, dropping the audio not yet encoded (barge-in: nothing more of this
   * request should be animated). The last page is empty and only says the stream is over.
   */
  abort(): Uint8Array {
    if (this.ended) return new Uint8Array(0);
    const out = this.#headers();
    this.#pendingLength = 0;
    out.push(this.#pages.write([], { eos: true }));
    this.#encoder.close();
    return concatBytes(out);
  }
}

export interface OggOpusReaderOptions {
  /** The rate to decode to (Opus decodes to 8/12/16/24/48 kHz whatever was encoded). */
  readonly sampleRate: OpusSampleRate;
  readonly maxPacketBytes?: number;
}

/** Decodes one Ogg Opus stream, fed in pieces, to mono PCM16. */
export class OggOpusReader {
  readonly sampleRate: OpusSampleRate;
  readonly #pages: OggPageReader;
  readonly #scale: number;
  #serial: number | undefined;
  #head: OpusHead | undefined;
  #tagsSeen = false;
  #decoder: OpusDecoder | undefined;
  /** Output samples still to drop (pre-skip, at the output rate). */
  #skip = 0;
  /** 48 kHz samples decoded so far (pre-skip included), and where the stream's first sample sits. */
  #decoded = 0n;
  #start: bigint | undefined;
  #ended = false;

  constructor(options: OggOpusReaderOptions) {
    if (!isOpusSampleRate(options.sampleRate)) fail(`Opus does not decode to ${String(options.sampleRate)} Hz (use 8/12/16/24/48 kHz)`);
    this.sampleRate = options.sampleRate;
    this.#scale = GRANULE_RATE / options.sampleRate;
    this.#pages = new OggPageReader(options.maxPacketBytes === undefined ? {} : { maxPacketBytes: options.maxPacketBytes });
  }

  get head(): OpusHead | undefined {
    return this.#head;
  }

  /** True once the last page (EOS) was read. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes in, the PCM they complete out (possibly empty). */
  push(bytes: Uint8Array): Int16Array {
    if (this.#ended) {
      if (bytes.length === 0) return new Int16Array(0);
      fail('bytes after the end of the stream');
    }
    const out: Int16Array[] = [];
    for (const page of this.#pages.push(bytes)) {
      if (this.#serial === undefined) {
        if ((page.flags & OGG_FLAGS.bos) === 0) fail('the stream does not begin with a BOS page');
        this.#serial = page.serial;
      } else if (page.serial !== this.#serial) {
        fail('a second logical stream (multiplexed or chained Ogg) is not supported');
      }
      this.#page(page.packets, page.granule, (page.flags & OGG_FLAGS.eos) !== 0, out);
      if (this.#ended) break;
    }
    return concatArrays(out, new Int16Array(0));
  }

  #page(packets: readonly Uint8Array[], granule: bigint, eos: boolean, out: Int16Array[]): void {
    const decodedBefore = this.#decoded;
    const pcm: Int16Array[] = [];
    for (const packet of packets) {
      if (this.#head === undefined) {
        this.#head = parseOpusHead(packet);
        this.#skip = Math.ceil(this.#head.preSkip / this.#scale);
        // One output channel: libopus downmixes a stereo stream itself.
        this.#decoder = new OpusDecoder({ sampleRate: this.sampleRate, channels: 1 });
        continue;
      }
      if (!this.#tagsSeen) {
        if (!startsWith(packet, OPUS_TAGS)) fail('the second packet is not an OpusTags header');
        this.#tagsSeen = true;
        continue;
      }
      const decoder = this.#decoder as OpusDecoder;
      // A copy: the pieces of a page are kept until its end trimming is known.
      const samples = decoder.decode(packet).slice();
      this.#decoded += BigInt(samples.length * this.#scale);
      pcm.push(samples);
    }
    if (pcm.length > 0 && this.#start === undefined && granule >= 0n) {
      // A stream may start later than 0 (RFC 7845 §4.5): its first audio page says where.
      const start = granule - (this.#decoded - decodedBefore);
      this.#start = start > 0n ? start : 0n;
    }
    let keep = Number.POSITIVE_INFINITY;
    if (eos && granule >= 0n) {
      // End trimming: the last page's granule is the position of the last real sample.
      const valid = granule - (this.#start ?? 0n);
      const excess = this.#decoded - valid;
      if (excess > 0n) {
        let pageSamples = 0;
        for (const part of pcm) pageSamples += part.length;
        keep = Math.max(0, pageSamples - Math.ceil(Number(excess) / this.#scale));
      }
    }
    for (let part of pcm) {
      if (keep <= 0) break;
      if (part.length > keep) part = part.subarray(0, keep);
      keep -= part.length;
      if (this.#skip > 0) {
        const dropped = Math.min(this.#skip, part.length);
        this.#skip -= dropped;
        part = part.subarray(dropped);
      }
      if (part.length > 0) out.push(part);
    }
    if (eos) {
      this.#ended = true;
      this.#decoder?.close();
    }
  }
}
