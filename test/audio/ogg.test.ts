/** The Ogg page codec (src/audio/ogg.ts): CRC, lacing, pages across packets, and streaming reads. */
import { describe, expect, it } from 'vitest';
import { AudioFormatError } from '../../src/errors.js';
import { concatBytes, OGG_FLAGS, oggCrc32, OggPageReader, OggPageWriter } from '../../src/audio/ogg.js';

function packet(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 1) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

/** Feeds `bytes` to a reader `step` bytes at a time. */
function readAll(bytes: Uint8Array, step: number) {
  const reader = new OggPageReader();
  const pages = [];
  for (let offset = 0; offset < bytes.length; offset += step) pages.push(...reader.push(bytes.subarray(offset, offset + step)));
  return { pages, pending: reader.pendingBytes };
}

describe('oggCrc32', () => {
  it('is CRC-32 with polynomial 0x04c11db7, initial 0, no reflection and no final xor', () => {
    // CRC-32/POSIX's check value for "123456789" is 0x765e7680, after its final xor with 0xffffffff.
    expect(oggCrc32(new TextEncoder().encode('123456789'))).toBe((0x765e7680 ^ 0xffffffff) >>> 0);
    expect(oggCrc32(new Uint8Array(0))).toBe(0);
  });
});

describe('OggPageWriter / OggPageReader', () => {
  it('laces packets as 255-byte segments plus a shorter one (0 after an exact multiple of 255)', () => {
    const writer = new OggPageWriter(7);
    const bytes = writer.write(
      [254, 255, 510, 0].map((n, i) => ({ data: packet(n, i), granule: BigInt(i + 1) })),
      { bos: true },
    );
    // 1 + 2 + 3 + 1 segments.
    expect(bytes[26]).toBe(7);
    expect([...bytes.subarray(27, 34)]).toEqual([254, 255, 0, 255, 255, 0, 0]);
    expect(bytes[5]).toBe(OGG_FLAGS.bos);
    const { pages } = readAll(bytes, bytes.length);
    expect(pages).toHaveLength(1);
    expect(pages[0]?.packets.map((p) => p.length)).toEqual([254, 255, 510, 0]);
    expect(pages[0]?.granule).toBe(4n);
    expect(pages[0]?.serial).toBe(7);
  });

  it('a packet longer than one page continues on the next pages (continued flag, granule -1 where none ends)', () => {
    const writer = new OggPageWriter(1);
    const big = packet(255 * 255 * 2 + 100, 3);
    const bytes = concatBytes([writer.write([{ data: packet(10, 1), granule: 10n }], { bos: true }), writer.write([{ data: big, granule: 20n }], { eos: true })]);
    const { pages, pending } = readAll(bytes, 997);
    expect(pending).toBe(0);
    expect(pages.map((p) => p.sequence)).toEqual([0, 1, 2, 3]);
    expect(pages.map((p) => (p.flags & OGG_FLAGS.continued) !== 0)).toEqual([false, false, true, true]);
    expect(pages.map((p) => p.granule)).toEqual([10n, -1n, -1n, 20n]);
    expect((pages.at(-1)?.flags ?? 0) & OGG_FLAGS.eos).toBe(OGG_FLAGS.eos);
    const packets = pages.flatMap((p) => p.packets);
    expect(packets).toHaveLength(2);
    expect(packets[1]).toEqual(big);
  });

  it('reads the same pages whatever the pieces the bytes arrive in', () => {
    const writer = new OggPageWriter(99);
    const parts = [writer.write([{ data: packet(19, 0), granule: 0n }], { bos: true })];
    for (let i = 1; i < 40; i += 1) parts.push(writer.write([{ data: packet(40 + i * 13, i), granule: BigInt(i * 960) }]));
    parts.push(writer.write([], { eos: true }));
    const bytes = concatBytes(parts);
    const whole = readAll(bytes, bytes.length).pages;
    for (const step of [1, 3, 27, 28, 100]) expect(readAll(bytes, step).pages).toEqual(whole);
    // The empty last page repeats the stream's position.
    expect(whole.at(-1)).toMatchObject({ packets: [], granule: 39n * 960n, flags: OGG_FLAGS.eos });
  });

  it('a flipped byte is a CRC mismatch; garbage and lost pages are audio_invalid_format errors', () => {
    const writer = new OggPageWriter(5);
    const first = writer.write([{ data: packet(50, 1), granule: 1n }], { bos: true });
    const second = writer.write([{ data: packet(50, 2), granule: 2n }]);
    const third = writer.write([{ data: packet(50, 3), granule: 3n }]);
    const corrupt = first.slice();
    corrupt[40] = (corrupt[40] ?? 0) ^ 0x01;
    expect(() => new OggPageReader().push(corrupt)).toThrow(/CRC mismatch/);
    expect(() => new OggPageReader().push(new TextEncoder().encode('RIFF....'))).toThrow(/capture pattern/);
    expect(() => new OggPageReader().push(concatBytes([first, third]))).toThrow(/lost pages/);
    try {
      new OggPageReader().push(corrupt);
    } catch (error) {
      expect(error).toBeInstanceOf(AudioFormatError);
      expect((error as AudioFormatError).code).toBe('audio_invalid_format');
    }
    expect(new OggPageReader().push(concatBytes([first, second, third]))).toHaveLength(3);
  });
});
