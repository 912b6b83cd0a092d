import { readFileSync } from 'node:fs';
import { readWav, type WavAudio } from '../../src/audio/wav.js';
import { InboundPipeline } from '../../src/audio/inbound.js';
import type { VadConfig } from '../../src/vad/config.js';
import type { SharedVad } from '../../src/vad/shared-vad.js';
import { VadStream, type VadEvent } from '../../src/vad/vad-stream.js';

export function loadFixture(name: string): WavAudio {
  return readWav(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
}

/** Speech edges (seconds) from test/fixtures/README.md. */
export const SPEECH_EDGES: Record<string, readonly [number, number]> = {
  'booking.16k.wav': [0.0, 3.92],
  'booking-noisy.16k.wav': [0.0, 3.92],
  'digits.16k.wav': [0.0, 3.47],
  'hello.16k.wav': [0.02, 1.91],
  'padded-hello.16k.wav': [0.52, 2.41],
  'stop.16k.wav': [0.0, 3.0],
  'weather.16k.wav': [0.0, 3.03],
};

export interface Recorded {
  readonly type: VadEvent['type'];
  readonly event: VadEvent;
  /** Audio position when the event was emitted. */
  readonly emittedAtMs: number;
}

/**
 * Streams a 16 kHz mono signal through a VadStream in `frameSamples` pieces, followed by
 * `trailingSilenceMs` of digital silence (the stream goes on after the speech), and returns the events.
 */
export async function runVad(
  samples: Float32Array,
  options: {
    vad: SharedVad;
    config?: Partial<VadConfig>;
    voicedMarksMs?: readonly number[];
    frameSamples?: number;
    trailingSilenceMs?: number;
  },
): Promise<Recorded[]> {
  const events: Recorded[] = [];
  const stream: VadStream = new VadStream({
    vad: options.vad,
    ...(options.config === undefined ? {} : { config: options.config }),
    ...(options.voicedMarksMs === undefined ? {} : { voicedMarksMs: options.voicedMarksMs }),
    onEvent: (event) => events.push({ type: event.type, event, emittedAtMs: stream.positionMs }),
  });
  const frame = options.frameSamples ?? 320;
  const silence = new Float32Array(Math.round(((options.trailingSilenceMs ?? 1000) * 16000) / 1000));
  for (const source of [samples, silence]) {
    for (let i = 0; i < source.length; i += frame) stream.push(source.subarray(i, Math.min(source.length, i + frame)));
  }
  await stream.whenIdle();
  stream.close();
  return events;
}

/** 48 kHz (or any inbound rate) file → the inbound pipeline → 16 kHz mono. */
export function toVadRate(audio: WavAudio, frameMs = 20): Float32Array {
  const pipeline = new InboundPipeline({ sampleRate: audio.sampleRate, channels: audio.channels });
  const out: Float32Array[] = [];
  const step = (audio.sampleRate * frameMs * audio.channels) / 1000;
  for (let i = 0; i < audio.samples.length; i += step) {
    out.push(pipeline.push(audio.samples.subarray(i, Math.min(audio.samples.length, i + step))).slice());
  }
  out.push(pipeline.flush().slice());
  pipeline.close();
  const total = out.reduce((n, a) => n + a.length, 0);
  const joined = new Float32Array(total);
  let offset = 0;
  for (const part of out) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

export function turns(events: readonly Recorded[]): Array<{ startMs: number; endMs: number; emittedAtMs: number; samples: Float32Array }> {
  const result: Array<{ startMs: number; endMs: number; emittedAtMs: number; samples: Float32Array }> = [];
  let start: number | undefined;
  for (const { event, emittedAtMs } of events) {
    if (event.type === 'vad.speechStart') start = event.atMs;
    if (event.type === 'vad.speechEnd') {
      if (start === undefined) throw new Error('speechEnd without speechStart');
      result.push({ startMs: start, endMs: event.atMs, emittedAtMs, samples: event.audio.samples });
      start = undefined;
    }
  }
  return result;
}

/**
 * Checks that a stream's events follow the VAD event grammar (vad.error may come anywhere):
 *   (onset (onsetCancelled | speechStart (voiced | speechPause speechResume)* speechPause? speechEnd))*
 * Throws on the first event out of place.
 */
export function checkEventGrammar(events: ReadonlyArray<{ readonly type: string }>): void {
  type State = 'idle' | 'pending' | 'speaking' | 'paused';
  const next: Record<State, Record<string, State>> = {
    idle: { 'vad.onset': 'pending' },
    pending: { 'vad.onsetCancelled': 'idle', 'vad.speechStart': 'speaking' },
    speaking: { 'vad.voiced': 'speaking', 'vad.speechPause': 'paused', 'vad.speechEnd': 'idle' },
    paused: { 'vad.speechResume': 'speaking', 'vad.speechEnd': 'idle' },
  };
  let state: State = 'idle';
  events.forEach(({ type }, i) => {
    if (type === 'vad.error') return;
    const to = next[state][type];
    if (to === undefined) {
      throw new Error(`event ${i} ${type} is out of place in state ${state}: ${events.map((e) => e.type).join(', ')}`);
    }
    state = to;
  });
}
