/**
 * Ogg Opus against ffmpeg: what the muxer writes, ffmpeg's demuxer and decoder read back exactly
 * (duration, sample count, the tone); what ffmpeg's libopus writes, the demuxer reads back. The
 * system ffmpeg is required here: when it is missing these tests fail, they do not skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { concatBytes } from '../../src/audio/ogg.js';
import { OggOpusReader, OggOpusWriter } from '../../src/audio/ogg-opus.js';
import type { OpusSampleRate } from '../../src/audio/opus.js';

const dir = mkdtempSync(join(tmpdir(), 'voxstate-ogg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tone(seconds: number, rate: number, hz = 440): Int16Array {
  const out = new Int16Array(Math.round(seconds * rate));
  for (let i = 0; i < out.length; i += 1) out[i] = Math.round(12000 * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

/** Sign changes per second ≈ 2 × the frequency of a pure tone. */
function frequencyOf(pcm: Int16Array, rate: number): number {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i += 1) if (((pcm[i - 1] ?? 0) < 0) !== ((pcm[i] ?? 0) < 0)) crossings += 1;
  return crossings / 2 / (pcm.length / rate);
}

function ffmpegEncoders(): string {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-encoders'], { encoding: 'utf8' });
  if (result.error !== undefined) throw new Error(`ffmpeg is required for these tests and could not be run: ${result.error.message}`);
  return result.stdout;
}

/** ffmpeg decodes an Ogg file to mono s16le at `rate`; stderr must hold no error or warning. */
function ffmpegDecode(file: string, rate: number, expectEmpty = false): Int16Array {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-v', 'warning', '-i', file, '-f', 's16le', '-ac', '1', '-ar', String(rate), '-'], { maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) throw new Error(`ffmpeg is required for these tests and could not be run: ${result.error.message}`);
  expect(result.status).toBe(0);
  // ffmpeg warns about nothing but an empty output, which only the empty stream may have.
  const stderr = result.stderr.toString('utf8');
  if (expectEmpty) expect(stderr).toMatch(/^Output file is empty[^\n]*\n$/);
  else expect(stderr).toBe('');
  const bytes = result.stdout;
  return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function ffprobe(file: string): { codec: string; sampleRate: number; duration: number; packets: number } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_packets', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' });
  const json = JSON.parse(out) as { streams: Array<Record<string, string>>; format: Record<string, string> };
  const stream = json.streams[0] ?? {};
  return { codec: stream['codec_name'] ?? '', sampleRate: Number(stream['sample_rate']), duration: Number(json.format['duration']), packets: Number(stream['nb_read_packets']) };
}

/** Writes `pcm` through an OggOpusWriter in pieces of `chunk` samples, as the link does. */
function mux(pcm: Int16Array, rate: OpusSampleRate, chunk: number, bitrate?: number): Uint8Array {
  const writer = new OggOpusWriter({ sampleRate: rate, ...(bitrate === undefined ? {} : { bitrate }) });
  const parts: Uint8Array[] = [];
  for (let offset = 0; offset < pcm.length; offset += chunk) parts.push(writer.push(pcm.subarray(offset, offset + chunk)));
  parts.push(writer.end());
  return concatBytes(parts);
}

describe('OggOpusWriter read by ffmpeg', () => {
  it.each([
    [16000, 333],
    [24000, 480],
    [48000, 2000],
  ] as const)('%i Hz in %i-sample pieces: ffmpeg decodes exactly the samples that went in, at the right pitch', (rate, chunk) => {
    const input = tone(1.234, rate);
    const file = join(dir, `mux-${rate}.ogg`);
    writeFileSync(file, mux(input, rate, chunk));
    const probe = ffprobe(file);
    expect(probe.codec).toBe('opus');
    expect(probe.sampleRate).toBe(48000);
    // ffprobe counts the pre-skip in the duration, as it does for its own libopus files.
    const preSkip = new OggOpusWriter({ sampleRate: rate }).preSkip;
    expect(preSkip).toBe(312);
    expect(probe.duration).toBeCloseTo(1.234 + preSkip / 48000, 4);
    // 20 ms packets: 1.234 s + the 6.5 ms pre-skip, rounded up.
    expect(probe.packets).toBe(Math.ceil((1.234 * 48000 + 312) / 960));
    const decoded = ffmpegDecode(file, rate);
    // Pre-skip and end trimming (the last granule) make the count exact.
    expect(decoded.length).toBe(input.length);
    expect(frequencyOf(decoded.subarray(rate / 10), rate)).toBeGreaterThan(430);
    expect(frequencyOf(decoded.subarray(rate / 10), rate)).toBeLessThan(450);
  });

  it('packets spread over several pages (one long push at a high bitrate) still read back exactly', () => {
    const rate = 48000;
    const input = tone(8, rate, 300);
    const bytes = mux(input, rate, input.length, 128_000); // 400 packets of ~320 bytes: > 255 segments
    const file = join(dir, 'mux-pages.ogg');
    writeFileSync(file, bytes);
    expect(ffmpegDecode(file, rate).length).toBe(input.length);
  });

  it('abort() ends the stream with an empty last page that ffmpeg accepts', () => {
    const rate = 16000;
    const writer = new OggOpusWriter({ sampleRate: rate });
    const input = tone(0.5, rate);
    const bytes = concatBytes([writer.push(input), writer.push(tone(0.005, rate)), writer.abort()]);
    const file = join(dir, 'abort.ogg');
    writeFileSync(file, bytes);
    const decoded = ffmpegDecode(file, rate);
    // Only whole 20 ms packets went out: 0.5 s of them, minus the pre-skip.
    expect(decoded.length).toBe(input.length - (writer.preSkip * rate) / 48000);
  });

  it('a stream with no audio at all is still valid: headers and an empty-of-speech last packet', () => {
    const writer = new OggOpusWriter({ sampleRate: 16000 });
    const file = join(dir, 'empty.ogg');
    writeFileSync(file, writer.end());
    expect(ffmpegDecode(file, 16000, true).length).toBe(0);
  });
});

describe('OggOpusReader on ffmpeg-made Ogg Opus', () => {
  const encoders = ffmpegEncoders();
  // libopus when ffmpeg has it; the native encoder needs -strict -2.
  const codec = /\blibopus\b/.test(encoders) ? ['-c:a', 'libopus'] : ['-c:a', 'opus', '-strict', '-2'];

  function ffmpegOgg(name: string, seconds: number, extra: string[] = []): Uint8Array {
    const file = join(dir, name);
    execFileSync('ffmpeg', ['-hide_banner', '-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}:sample_rate=48000`, '-ac', '1', ...codec, ...extra, file]);
    return new Uint8Array(readFileSync(file));
  }

  it('decodes a 1.5 s 440 Hz tone to exactly 1.5 s at 48 kHz and 16 kHz', () => {
    const bytes = ffmpegOgg('sine.ogg', 1.5);
    for (const rate of [48000, 16000] as const) {
      const reader = new OggOpusReader({ sampleRate: rate });
      const pcm = reader.push(bytes);
      expect(reader.ended).toBe(true);
      expect(reader.head?.channels).toBe(1);
      expect(pcm.length).toBe(1.5 * rate);
      expect(frequencyOf(pcm.subarray(rate / 10), rate)).toBeGreaterThan(430);
      expect(frequencyOf(pcm.subarray(rate / 10), rate)).toBeLessThan(450);
    }
  });

  it('gives the same PCM when the file arrives in small pieces (a socket)', () => {
    const bytes = ffmpegOgg('sine-pieces.ogg', 1);
    const whole = new OggOpusReader({ sampleRate: 16000 }).push(bytes);
    const reader = new OggOpusReader({ sampleRate: 16000 });
    const parts: Int16Array[] = [];
    for (let offset = 0; offset < bytes.length; offset += 61) parts.push(reader.push(bytes.subarray(offset, offset + 61)));
    const joined = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    expect(joined).toEqual(whole);
  });

  it('a corrupted byte is an audio_invalid_format error, not noise', () => {
    const bytes = ffmpegOgg('sine-corrupt.ogg', 0.5).slice();
    bytes[bytes.length - 20] = (bytes[bytes.length - 20] ?? 0) ^ 0xff;
    expect(() => new OggOpusReader({ sampleRate: 16000 }).push(bytes)).toThrow(expect.objectContaining({ code: 'audio_invalid_format' }));
  });

  it('reads back what OggOpusWriter wrote (the local Motion Server path)', () => {
    const input = tone(0.777, 16000);
    const pcm = new OggOpusReader({ sampleRate: 16000 }).push(mux(input, 16000, 320));
    expect(pcm.length).toBe(input.length);
  });
});
