/**
 * A scripted streaming recognizer for the loopback StreamingRecognize server: it listens to the
 * LINEAR16 audio it is sent (voice = a 10 ms window whose RMS is above `threshold`), and "hears" the
 * next phrase of a script in each voiced segment, with the timing of a streaming recognizer:
 * interim results (growing word prefixes) while the voice lasts, the final result once the audio
 * has been silent for `finalAfterEdgeMs` after the segment's last voiced sample. All times are
 * audio times (sample counts), so the results follow the audio however fast it is sent.
 *
 * The handler keeps no state between calls except the shared `phrases` queue, so one handler can
 * serve every call of a session (`server.defaultRecognizeHandler = scriptedRecognizer({ … })`).
 * Its `finals` record when each final was sent, for benchmarks that print the timing they ran with.
 */
import * as grpc from '@grpc/grpc-js';
import { float32ToInt16 } from '../../../src/audio/frame.js';
import { fail, result, status, type RecognizeHandler } from './google-server.js';

export interface ScriptedRecognizerOptions {
  /**
   * What the voiced segments say, in order: each new segment takes (shifts) the next phrase. The
   * array is the caller's, shared by every call the handler serves, so a test can push phrases as it
   * goes. A segment finding '' or an empty queue hears nothing (a cough): it sends no result.
   */
  readonly phrases: string[];
  /** Voiced audio between two interim results. Default 100 ms. */
  readonly interimEveryMs?: number;
  /** Silence after a segment's last voiced sample before its final result. Default 150 ms. */
  readonly finalAfterEdgeMs?: number;
  /** RMS of a 10 ms window (full scale 1) above which it is voiced. Default 0.02 (−34 dBFS). */
  readonly threshold?: number;
  /** Voiced audio per word of an interim hypothesis. Default 300 ms. */
  readonly wordMs?: number;
}

export interface ScriptedResult {
  readonly text: string;
  readonly isFinal: boolean;
  /** Which call (0, 1, … in the order this handler served them) sent it. */
  readonly call: number;
  /** Audio time (ms from the call's first sample) when it was sent. */
  readonly audioMs: number;
  /** performance.now() when it was sent. */
  readonly wallMs: number;
}

export interface ScriptedFinal extends ScriptedResult {
  readonly isFinal: true;
  /** Audio time of the end of the segment's last voiced window. */
  readonly edgeMs: number;
  /** Sent because the client half-closed, before `finalAfterEdgeMs` of silence had passed. */
  readonly onHalfClose: boolean;
}

export type ScriptedRecognizer = RecognizeHandler & {
  /** Every result sent, interim and final, in order. */
  readonly results: ScriptedResult[];
  /** The final results, in order. */
  readonly finals: ScriptedFinal[];
};

interface Segment {
  readonly words: readonly string[];
  /** Sample count at the end of the last voiced window. */
  edge: number;
  voicedMs: number;
  sinceInterimMs: number;
}

export function scriptedRecognizer(options: ScriptedRecognizerOptions): ScriptedRecognizer {
  const interimEveryMs = options.interimEveryMs ?? 100;
  const finalAfterEdgeMs = options.finalAfterEdgeMs ?? 150;
  const threshold = options.threshold ?? 0.02;
  const wordMs = options.wordMs ?? 300;
  const results: ScriptedResult[] = [];
  const finals: ScriptedFinal[] = [];
  let calls = 0;

  const handler: RecognizeHandler = async (call, requests) => {
    const index = calls++;
    let rate = 16_000;
    let windowSize = 160;
    let configured = false;
    let samples = 0;
    let sum = 0;
    let count = 0;
    let odd: number | undefined; // a byte left over from an odd-length message
    let segment: Segment | undefined;

    const audioMs = (): number => (samples / rate) * 1000;
    const send = (text: string, isFinal: boolean): ScriptedResult | undefined => {
      if (call.cancelled) return undefined;
      call.write(result(text, isFinal));
      const sent = { text, isFinal, call: index, audioMs: audioMs(), wallMs: performance.now() };
      results.push(sent);
      return sent;
    };
    const finish = (onHalfClose: boolean): void => {
      const open = segment;
      segment = undefined;
      if (!open || open.words.length === 0) return;
      const sent = send(open.words.join(' '), true);
      if (sent) finals.push({ ...sent, isFinal: true, edgeMs: (open.edge / rate) * 1000, onHalfClose });
    };
    const window = (): void => {
      const voiced = Math.sqrt(sum / count) > threshold;
      const ms = (count / rate) * 1000;
      sum = 0;
      count = 0;
      if (voiced) {
        segment ??= { words: (options.phrases.shift() ?? '').split(/\s+/).filter(Boolean), edge: samples, voicedMs: 0, sinceInterimMs: 0 };
        segment.edge = samples;
        segment.voicedMs += ms;
        segment.sinceInterimMs += ms;
        if (segment.sinceInterimMs >= interimEveryMs - 1e-6) {
          segment.sinceInterimMs = 0;
          // Never the whole phrase: that is the final's.
          const k = Math.min(segment.words.length - 1, Math.max(1, Math.ceil(segment.voicedMs / wordMs)));
          if (k > 0) send(segment.words.slice(0, k).join(' '), false);
        }
      } else if (segment && ((samples - segment.edge) / rate) * 1000 >= finalAfterEdgeMs - 1e-6) {
        finish(false);
      }
    };
    const feed = (sample: number): void => {
      const v = sample / 32768;
      sum += v * v;
      count++;
      samples++;
      if (count === windowSize) window();
    };

    for await (const request of requests) {
      if (!configured) {
        const config = request.streamingConfig?.config;
        if (!config) return fail(call, status(grpc.status.INVALID_ARGUMENT, 'first request must carry streaming_config'));
        if ((config.encoding ?? 'LINEAR16') !== 'LINEAR16')
          return fail(call, status(grpc.status.INVALID_ARGUMENT, `the scripted recognizer decodes LINEAR16 only, not ${config.encoding}`));
        rate = config.sampleRateHertz ?? 16_000;
        windowSize = Math.max(1, Math.round(rate / 100));
        configured = true;
        continue;
      }
      if (call.cancelled) return;
      const bytes = request.audioContent ?? Buffer.alloc(0);
      let i = 0;
      if (odd !== undefined && bytes.length > 0) {
        feed(Buffer.from([odd, bytes[0]!]).readInt16LE(0));
        odd = undefined;
        i = 1;
      }
      for (; i + 1 < bytes.length; i += 2) feed(bytes.readInt16LE(i));
      if (i < bytes.length) odd = bytes[i];
    }
    if (count > 0) window();
    finish(true);
    if (!call.cancelled) call.end();
  };
  return Object.assign(handler, { results, finals });
}

/**
 * A handler whose call fails with `error` (default UNAVAILABLE) right after it has sent `results`
 * results: a streaming recognizer that breaks mid-utterance. What `handler` sends afterwards is
 * dropped, and it can no longer end the call.
 */
export function failAfterResults(
  handler: RecognizeHandler,
  results: number,
  error: grpc.ServiceError = status(grpc.status.UNAVAILABLE, 'the recognizer went away mid-utterance'),
): RecognizeHandler {
  return (call, requests) => {
    let sent = 0;
    let failed = false;
    let ended = false;
    const write = call.write.bind(call) as (chunk: unknown) => boolean;
    const end = call.end.bind(call) as (...args: unknown[]) => unknown;
    Object.assign(call, {
      write: (chunk: unknown): boolean => {
        if (failed) return false;
        const ok = write(chunk);
        if (++sent >= results) {
          failed = true;
          fail(call, error);
        }
        return ok;
      },
      // The error status goes out through grpc-js's own end(); the handler's later one is dropped.
      end: (...args: unknown[]): void => {
        if (ended) return;
        ended = true;
        end(...args);
      },
    });
    return handler(call, requests);
  };
}

/**
 * What a scripted recognizer with these options sends for `clip` (16 kHz mono), computed offline
 * by the same handler: its final results, one per voiced segment it hears, with their edges. The
 * phrases are placeholders (`segment 1`, `segment 2`, …). Benchmarks and tests use it to check that
 * a clip is heard as the number of segments they script phrases for.
 */
export async function hearOffline(clip: Float32Array, options: Omit<ScriptedRecognizerOptions, 'phrases'> = {}): Promise<readonly ScriptedFinal[]> {
  const recognizer = scriptedRecognizer({ ...options, phrases: Array.from({ length: 1000 }, (_, i) => `segment ${i + 1}`) });
  const int16 = float32ToInt16(clip);
  const pcm = Buffer.from(int16.buffer, int16.byteOffset, int16.byteLength);
  const call = { cancelled: false, write: () => true, end: () => undefined, emit: () => true } as unknown as Parameters<RecognizeHandler>[0];
  async function* requests(): AsyncGenerator<{ streamingConfig?: { config: { encoding: string; sampleRateHertz: number } }; audioContent?: Buffer }> {
    yield { streamingConfig: { config: { encoding: 'LINEAR16', sampleRateHertz: 16_000 } } };
    for (let i = 0; i < pcm.length; i += 640) yield { audioContent: pcm.subarray(i, i + 640) };
  }
  await recognizer(call, requests());
  return recognizer.finals;
}
