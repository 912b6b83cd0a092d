/**
 * Ogg pages (RFC 3533) as a pure codec: packets in, page bytes out, and back. No I/O.
 *
 * A page is a 27-byte header ("OggS", version 0, flags, 64-bit granule position, serial, sequence,
 * CRC-32, segment count), a lacing table of up to 255 segment sizes and the body. A packet is laced
 * as 255-byte segments plus one shorter one (0 when its length is a multiple of 255), so a segment of
 * exactly 255 always means "the packet goes on". A packet that does not fit in a page continues on the
 * next, whose header has the `continued` flag. The CRC is Ogg's own: polynomial 0x04c11db7, not
 * reflected, initial value 0, no final xor, over the whole page with the CRC field zeroed.
 *
 * `OggPageWriter` muxes one logical stream; `OggPageReader` demuxes bytes that arrive in arbitrary
 * pieces (a socket) into pages and whole packets, checking every CRC.
 */
import { AudioFormatError } from '../errors.js';
import { concatArrays } from './frame.js';

export const OGG_FLAGS = { continued: 0x01, bos: 0x02, eos: 0x04 } as const;

/** Granule position of a page on which no packet ends. */
export const NO_GRANULE = -1n;

const HEADER_BYTES = 27;
const MAX_SEGMENTS = 255;
const CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i += 1) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit += 1) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/** Ogg's CRC-32 of `bytes` (the page with its CRC field set to zero). */
export function oggCrc32(bytes: Uint8Array): number {
  let crc = 0;
  for (let i = 0; i < bytes.length; i += 1) crc = ((crc << 8) ^ (CRC_TABLE[((crc >>> 24) ^ (bytes[i] ?? 0)) & 0xff] ?? 0)) >>> 0;
  return crc;
}

function fail(message: string): never {
  throw new AudioFormatError('audio_invalid_format', `Ogg: ${message}`);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return concatArrays(parts, new Uint8Array(0));
}

/** One packet to mux, with the granule position its stream has reached at its end. */
export interface OggPacket {
  readonly data: Uint8Array;
  readonly granule: bigint;
}

function buildPage(flags: number, granule: bigint, serial: number, sequence: number, lacing: readonly number[], body: readonly Uint8Array[]): Uint8Array {
  let bodyLength = 0;
  for (const part of body) bodyLength += part.length;
  const page = new Uint8Array(HEADER_BYTES + lacing.length + bodyLength);
  const view = new DataView(page.buffer);
  page.set(CAPTURE, 0);
  view.setUint8(4, 0); // stream structure version
  view.setUint8(5, flags);
  view.setBigInt64(6, granule, true);
  view.setUint32(14, serial >>> 0, true);
  view.setUint32(18, sequence >>> 0, true);
  // bytes 22..25: the CRC, zero while it is computed
  view.setUint8(26, lacing.length);
  page.set(lacing, HEADER_BYTES);
  let offset = HEADER_BYTES + lacing.length;
  for (const part of body) {
    page.set(part, offset);
    offset += part.length;
  }
  view.setUint32(22, oggCrc32(page), true);
  return page;
}

/** Muxes the packets of one logical stream into pages. */
export class OggPageWriter {
  readonly serial: number;
  #sequence = 0;
  #granule = 0n;
  #ended = false;

  constructor(serial: number) {
    this.serial = serial >>> 0;
  }

  /** Pages written so far. */
  get pages(): number {
    return this.#sequence;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Writes `packets` as whole pages and returns their bytes. Nothing is held back: the last page
   * ends with the last packet, so a live stream loses no time waiting for a page to fill. `bos`
   * marks the stream's first page, `eos` its last; `eos` with no packets writes an empty last page
   * (granule unchanged), which is how a stream cut short says it is over.
   */
  write(packets: readonly OggPacket[], flags: { readonly bos?: boolean; readonly eos?: boolean } = {}): Uint8Array {
    if (this.#ended) fail(`stream ${this.serial} already ended`);
    if (packets.length === 0 && flags.eos !== true && flags.bos !== true) return new Uint8Array(0);
    const pages: Uint8Array[] = [];
    let lacing: number[] = [];
    let body: Uint8Array[] = [];
    let pageGranule = NO_GRANULE;
    /** The page being filled begins with the rest of a packet from the page before. */
    let pageContinued = false;
    const flush = (last: boolean): void => {
      let pageFlags = pageContinued ? OGG_FLAGS.continued : 0;
      if (flags.bos === true && this.#sequence === 0) pageFlags |= OGG_FLAGS.bos;
      if (last && flags.eos === true) pageFlags |= OGG_FLAGS.eos;
      // A page on which no packet ends carries -1; an empty last page repeats the stream's position.
      const granule = pageGranule === NO_GRANULE && lacing.length === 0 ? this.#granule : pageGranule;
      pages.push(buildPage(pageFlags, granule, this.serial, this.#sequence, lacing, body));
      this.#sequence += 1;
      lacing = [];
      body = [];
      pageGranule = NO_GRANULE;
    };
    for (const packet of packets) {
      const data = packet.data;
      let offset = 0;
      // A packet of n bytes takes floor(n / 255) + 1 segments; the last is shorter than 255.
      for (;;) {
        if (lacing.length === MAX_SEGMENTS) {
          flush(false);
          pageContinued = offset > 0;
        }
        const size = Math.min(255, data.length - offset);
        lacing.push(size);
        body.push(data.subarray(offset, offset + size));
        offset += size;
        if (size < 255) break;
      }
      pageGranule = packet.granule;
      this.#granule = packet.granule;
    }
    if (lacing.length > 0 || pages.length === 0 || flags.eos === true) flush(true);
    if (flags.eos === true) this.#ended = true;
    return concatBytes(pages);
  }
}

/** A page as read: its header fields and the packets that end on it. */
export interface OggPage {
  readonly flags: number;
  readonly granule: bigint;
  readonly serial: number;
  readonly sequence: number;
  /** Packets completed on this page (a packet begun on an earlier page is joined up). */
  readonly packets: readonly Uint8Array[];
}

export interface OggPageReaderOptions {
  /** Largest packet accepted (a guard against a stream that never ends a packet). Default 1 MiB. */
  readonly maxPacketBytes?: number;
}

/**
 * Demuxes Ogg bytes that arrive in pieces of any size. `push` returns the pages completed by the
 * bytes so far. Every page must start where the previous one ended (a stream over a socket has no
 * garbage to skip) and carry a correct CRC; anything else is an `audio_invalid_format` error.
 */
export class OggPageReader {
  readonly #maxPacketBytes: number;
  #buffer = new Uint8Array(0);
  /** The packet continued from the previous page, per serial. */
  readonly #partial = new Map<number, Uint8Array[]>();
  readonly #partialBytes = new Map<number, number>();
  readonly #nextSequence = new Map<number, number>();

  constructor(options: OggPageReaderOptions = {}) {
    this.#maxPacketBytes = options.maxPacketBytes ?? 1024 * 1024;
  }

  /** Bytes received that do not yet make a whole page. */
  get pendingBytes(): number {
    return this.#buffer.length;
  }

  push(bytes: Uint8Array): OggPage[] {
    const buffer = this.#buffer.length === 0 ? bytes : concatBytes([this.#buffer, bytes]);
    const pages: OggPage[] = [];
    let offset = 0;
    for (;;) {
      const page = this.#readPage(buffer, offset);
      if (page === undefined) break;
      pages.push(page.page);
      offset = page.end;
    }
    // Copy the remainder: the caller may reuse the buffer it passed in.
    this.#buffer = offset === buffer.length ? new Uint8Array(0) : buffer.slice(offset);
    return pages;
  }

  #readPage(buffer: Uint8Array, start: number): { page: OggPage; end: number } | undefined {
    const available = buffer.length - start;
    if (available < 4) {
      for (let i = 0; i < available; i += 1) if (buffer[start + i] !== CAPTURE[i]) fail('missing the "OggS" capture pattern');
      return undefined;
    }
    for (let i = 0; i < 4; i += 1) if (buffer[start + i] !== CAPTURE[i]) fail('missing the "OggS" capture pattern');
    if (available < HEADER_BYTES) return undefined;
    const view = new DataView(buffer.buffer, buffer.byteOffset + start, available);
    if (view.getUint8(4) !== 0) fail(`unsupported stream structure version ${view.getUint8(4)}`);
    const segments = view.getUint8(26);
    if (available < HEADER_BYTES + segments) return undefined;
    let bodyLength = 0;
    for (let i = 0; i < segments; i += 1) bodyLength += buffer[start + HEADER_BYTES + i] ?? 0;
    const length = HEADER_BYTES + segments + bodyLength;
    if (available < length) return undefined;

    const page = buffer.slice(start, start + length);
    const stored = new DataView(page.buffer).getUint32(22, true);
    page.fill(0, 22, 26);
    if (oggCrc32(page) !== stored) fail('page CRC mismatch');

    const flags = view.getUint8(5);
    const granule = view.getBigInt64(6, true);
    const serial = view.getUint32(14, true);
    const sequence = view.getUint32(18, true);
    const expected = this.#nextSequence.get(serial);
    if (expected !== undefined && sequence !== expected) fail(`page ${sequence} of stream ${serial} follows page ${expected - 1} (lost pages)`);
    this.#nextSequence.set(serial, sequence + 1);

    const packets: Uint8Array[] = [];
    let parts = this.#partial.get(serial) ?? [];
    let partBytes = this.#partialBytes.get(serial) ?? 0;
    const continued = (flags & OGG_FLAGS.continued) !== 0;
    if (!continued && parts.length > 0) fail('a packet was cut off: the next page does not continue it');
    if (continued && parts.length === 0) fail('a page continues a packet that never began');
    let bodyOffset = HEADER_BYTES + segments;
    for (let i = 0; i < segments; i += 1) {
      const size = page[HEADER_BYTES + i] ?? 0;
      parts.push(page.subarray(bodyOffset, bodyOffset + size));
      partBytes += size;
      if (partBytes > this.#maxPacketBytes) fail(`a packet exceeds ${this.#maxPacketBytes} bytes`);
      bodyOffset += size;
      if (size < 255) {
        packets.push(concatBytes(parts));
        parts = [];
        partBytes = 0;
      }
    }
    if (parts.length > 0 && (flags & OGG_FLAGS.eos) !== 0) fail('the last page ends inside a packet');
    this.#partial.set(serial, parts);
    this.#partialBytes.set(serial, partBytes);
    if ((flags & OGG_FLAGS.eos) !== 0) {
      this.#partial.delete(serial);
      this.#partialBytes.delete(serial);
      this.#nextSequence.delete(serial);
    }
    return { page: { flags, granule, serial, sequence, packets }, end: start + length };
  }
}
