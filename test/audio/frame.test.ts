import { describe, expect, it } from 'vitest';
import { AudioFormatError } from '../../src/errors.js';
import {
  bytesToInt16,
  downmixStereo,
  float32ToInt16,
  int16ToFloat32,
  sanitizeFloat32,
  assertFiniteSamples,
} from '../../src/audio/frame.js';
import { InboundPipeline } from '../../src/audio/inbound.js';

describe('PCM conversions', () => {
  it('Int16 → Float32 → Int16 is lossless', () => {
    const pcm = Int16Array.from([-32768, -12345, -1, 0, 1, 12345, 32767]);
    expect(Array.from(float32ToInt16(int16ToFloat32(pcm)))).toEqual(Array.from(pcm));
  });

  it('Float32 → Int16 clamps out-of-range values and turns NaN into 0', () => {
    const out = float32ToInt16(Float32Array.from([2, -2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5]));
    expect(Array.from(out)).toEqual([32767, -32768, 0, 32767, -32768, 16384]);
    expect(float32ToInt16(Float32Array.from([1]))[0]).toBe(32767);
  });

  it('writes into a caller buffer and rejects one that is too small', () => {
    const out = new Float32Array(8);
    expect(int16ToFloat32(Int16Array.from([16384, -16384]), out)).toHaveLength(2);
    expect(out[0]).toBe(0.5);
    expect(() => int16ToFloat32(new Int16Array(9), out)).toThrow(AudioFormatError);
  });

  it('sanitizeFloat32 fixes bad samples in place and counts them; assertFiniteSamples refuses them', () => {
    const x = Float32Array.from([0.1, Number.NaN, 3, -Infinity]);
    expect(sanitizeFloat32(x)).toBe(3);
    expect(Array.from(x)).toEqual([Math.fround(0.1), 0, 1, -1]);
    expect(() => assertFiniteSamples(Float32Array.from([0, Number.NaN]))).toThrow(
      expect.objectContaining({ code: 'audio_invalid_samples' }) as Error,
    );
  });

  it('down-mixes interleaved stereo by averaging; odd lengths are a format error', () => {
    expect(Array.from(downmixStereo(Int16Array.from([100, 300, -2, -4])))).toEqual([200, -3]);
    expect(Array.from(downmixStereo(Float32Array.from([1, 0, -0.5, 0.5])))).toEqual([0.5, 0]);
    expect(() => downmixStereo(new Int16Array(3))).toThrow(expect.objectContaining({ code: 'audio_invalid_format' }) as Error);
  });

  it('bytesToInt16 reads little-endian PCM16, copes with unaligned buffers and refuses odd byte counts', () => {
    const bytes = Uint8Array.from([0, 0x01, 0x00, 0xff, 0x7f]);
    expect(Array.from(bytesToInt16(bytes.subarray(1)))).toEqual([1, 0x7fff]);
    expect(() => bytesToInt16(bytes)).toThrow(expect.objectContaining({ code: 'audio_invalid_format' }) as Error);
  });
});

describe('InboundPipeline', () => {
  it('48 kHz interleaved stereo PCM16 → mono 16 kHz Float32 at a third of the length', () => {
    const pipeline = new InboundPipeline({ sampleRate: 48000, channels: 2 });
    let total = 0;
    for (let k = 0; k < 50; k++) total += pipeline.push(new Int16Array(960 * 2).fill(1000)).length;
    total += pipeline.flush().length;
    expect(total).toBe(16000);
    pipeline.close();
    pipeline.close(); // idempotent
  });

  it('accepts PCM16 bytes (Buffer) at 24 kHz and Float32 at 16 kHz', () => {
    const at24 = new InboundPipeline({ sampleRate: 24000 });
    let total = 0;
    for (let k = 0; k < 10; k++) total += at24.push(Buffer.alloc(480 * 2)).length;
    expect(total + at24.flush().length).toBe(3200);
    const at16 = new InboundPipeline({ sampleRate: 16000 });
    expect(Array.from(at16.push(Float32Array.from([0.25, -0.25])))).toEqual([0.25, -0.25]);
  });

  it('refuses unsupported rates, channel counts, odd stereo lengths and odd byte counts with AudioFormatError', () => {
    expect(() => new InboundPipeline({ sampleRate: 44100 })).toThrow(AudioFormatError);
    expect(() => new InboundPipeline({ sampleRate: 16000, channels: 6 })).toThrow(AudioFormatError);
    const stereo = new InboundPipeline({ sampleRate: 16000, channels: 2 });
    expect(() => stereo.push(new Int16Array(321))).toThrow(expect.objectContaining({ code: 'audio_invalid_format' }) as Error);
    expect(() => stereo.push(new Uint8Array(641))).toThrow(expect.objectContaining({ code: 'audio_invalid_format' }) as Error);
  });

  it('NaN/Infinity in Float32 input become 0 / full scale and are counted', () => {
    const pipeline = new InboundPipeline({ sampleRate: 16000 });
    const out = pipeline.push(Float32Array.from([Number.NaN, Number.POSITIVE_INFINITY, 0.5]));
    expect(Array.from(out)).toEqual([0, 1, 0.5]);
    expect(pipeline.sanitizedSamples).toBe(2);
  });
});
