import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AudioFormatError } from '../../src/errors.js';
import { float32ToInt16 } from '../../src/audio/frame.js';
import { OpusDecoder, OpusEncoder } from '../../src/audio/opus.js';
import { readWav, writeWav } from '../../src/audio/wav.js';
import { toneAmplitude } from './signal.js';

function tone(hz: number, rate: number, samples: number, amplitude = 0.5): Float32Array {
  return Float32Array.from({ length: samples }, (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / rate));
}

describe('WAV', () => {
  it('reads the fixtures: 16 kHz mono with the documented duration', () => {
    const wav = readWav(readFileSync(new URL('../fixtures/padded-hello.16k.wav', import.meta.url)));
    expect(wav.sampleRate).toBe(16000);
    expect(wav.channels).toBe(1);
    expect(wav.samples.length / 16000).toBeCloseTo(4.26, 2);
    const at48 = readWav(readFileSync(new URL('../fixtures/hello.48k.wav', import.meta.url)));
    expect(at48.sampleRate).toBe(48000);
  });

  it('write → read round-trips PCM16 exactly (mono and stereo)', () => {
    const mono = float32ToInt16(tone(440, 16000, 1600));
    const back = readWav(writeWav(mono, 16000));
    expect(back.sampleRate).toBe(16000);
    expect(Array.from(float32ToInt16(back.samples))).toEqual(Array.from(mono));
    const stereo = readWav(writeWav(Int16Array.from([1, -1, 300, -300]), 48000, 2));
    expect(stereo.channels).toBe(2);
    expect(Array.from(float32ToInt16(stereo.samples))).toEqual([1, -1, 300, -300]);
  });

  it('the fixture survives read → write → read unchanged', () => {
    const bytes = readFileSync(new URL('../fixtures/stop.16k.wav', import.meta.url));
    const first = readWav(bytes);
    const again = readWav(writeWav(first.samples, first.sampleRate));
    expect(again.samples).toEqual(first.samples);
  });

  it('garbage, truncated and unsupported files are AudioFormatErrors', () => {
    expect(() => readWav(new Uint8Array(10))).toThrow(AudioFormatError);
    const good = writeWav(new Int16Array(100), 16000);
    expect(() => readWav(good.subarray(0, 30))).toThrow(AudioFormatError);
    const sixChannels = good.slice();
    new DataView(sixChannels.buffer).setUint16(22, 6, true);
    expect(() => readWav(sixChannels)).toThrow(/channels/);
    expect(() => writeWav(new Int16Array(3), 16000, 2)).toThrow(AudioFormatError);
  });
});

describe('Opus', () => {
  it('encode → decode keeps a 440 Hz tone (20 ms frames at 48 kHz)', () => {
    const encoder = new OpusEncoder({ sampleRate: 48000, channels: 1 });
    const decoder = new OpusDecoder({ sampleRate: 48000, channels: 1 });
    const pcm = float32ToInt16(tone(440, 48000, 48000));
    const decoded: number[] = [];
    let bytes = 0;
    for (let i = 0; i < pcm.length; i += 960) {
      const packet = encoder.encode(pcm.subarray(i, i + 960));
      bytes += packet.length;
      const frame = decoder.decode(packet);
      expect(frame.length).toBe(960);
      decoded.push(...frame);
    }
    const out = Float32Array.from(decoded.slice(4800), (v) => v / 32768); // skip the codec's warm-up
    expect(toneAmplitude(out, 440, 48000)).toBeGreaterThan(0.4);
    expect(toneAmplitude(out, 440, 48000)).toBeLessThan(0.6);
    expect(toneAmplitude(out, 1000, 48000)).toBeLessThan(0.02);
    expect(bytes).toBeLessThan(48000 * 2 / 8); // actually compressed (< 1/8 of PCM16)
    encoder.close();
    decoder.close();
  });

  it('refuses frame sizes Opus cannot encode and unsupported rates', () => {
    const encoder = new OpusEncoder();
    expect(() => encoder.encode(new Int16Array(1000))).toThrow(AudioFormatError);
    expect(() => new OpusEncoder({ sampleRate: 44100 as 48000 })).toThrow(AudioFormatError);
  });

  it('a corrupt packet is an AudioFormatError, not a crash', () => {
    const decoder = new OpusDecoder();
    expect(() => decoder.decode(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01]))).toThrow(AudioFormatError);
  });
});
