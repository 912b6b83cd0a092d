/**
 * The `playout` actor of a reply: it receives the reply's synthesized audio (any sample rate),
 * converts it to the transport's rate and sends it in 20 ms frames, paced by the drift-free
 * PlayoutClock. It reports the first frame, every word whose audio has been fully played, the end
 * of every segment, and the moment everything queued has been played after `playout.finish`.
 * Stopping the actor (the reply was cancelled) stops the audio at once.
 */
import { fromCallback } from 'xstate';
import type { PlayoutActorInput, PlayoutCommand, PlayoutReport } from '../../machines/reply.js';
import { float32ToInt16, int16ToFloat32 } from '../audio/frame.js';
import { PlayoutClock } from '../audio/playout-clock.js';
import { Resampler } from '../audio/resampler.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../observability/logger.js';
import type { WordTiming } from '../providers/types.js';
import { words } from '../../machines/words.js';

export const FRAME_MS = 20;

/** Where a session's outbound audio goes (the transport, a recorder in tests). */
export interface AudioSink {
  /** The rate frames must be sent at. */
  readonly sampleRate: number;
  /** One 20 ms mono PCM16 frame. The sink owns the array. */
  send(frame: Int16Array, meta: { readonly replyId: number }): void;
  /**
   * A reply was cancelled: drop every frame the transport still holds, so no audio of it is heard
   * after the cancel. Returns how many frames were dropped.
   */
  clear?(): number;
  /**
   * How much of reply `replyId` the listener has actually heard, in ms from its first frame, when
   * the client reports it (websocket audio: `playback.progress`). Words count as played only once
   * both sent and heard, so a barge-in keeps exactly what reached the user's ears.
   */
  heardMs?(replyId: number): number | undefined;
}

export interface PlayoutOptions {
  readonly sink: AudioSink;
  readonly clock: Clock;
  readonly logger?: Logger;
}

interface Segment {
  readonly index: number;
  /** Where this segment starts in the reply's audio, in samples (set when it starts playing). */
  startSample: number;
  readonly chunks: Int16Array[];
  /** Read offset into chunks[0]. */
  head: number;
  queued: number;
  played: number;
  ended: boolean;
  text: string;
  words: WordTiming[] | undefined;
  wordsReported: number;
}

/** Spreads a segment's duration over its words by their length when the TTS gave no timings. */
export function estimateWordTimings(text: string, totalMs: number): WordTiming[] {
  const list = words(text);
  const weights = list.map((w) => w.length + 1);
  const sum = weights.reduce((a, b) => a + b, 0);
  let at = 0;
  return list.map((word, i) => {
    const startMs = at;
    at += sum === 0 ? 0 : ((weights[i] ?? 0) / sum) * totalMs;
    return { word, startMs, endMs: at };
  });
}

export function createPlayoutLogic(options: PlayoutOptions) {
  const { sink, clock, logger } = options;
  const rate = sink.sampleRate;
  const frameSamples = Math.round((rate * FRAME_MS) / 1000);

  return fromCallback<PlayoutCommand, PlayoutActorInput>(({ input, receive, sendBack }) => {
    const report = (event: PlayoutReport): void => sendBack(event);
    const segments: Segment[] = [];
    let current = 0; // index into `segments` of the one playing
    /** `open`: more audio may come; `finishing`: the reply sent it all; `drained`: and it all went out. */
    let stream: 'open' | 'finishing' | 'drained' = 'open';
    let userPaused = input.paused;
    let resampler: Resampler | undefined;
    let replySamples = 0; // samples of this reply sent so far

    const segmentFor = (index: number): Segment => {
      let segment = segments.find((s) => s.index === index);
      if (segment === undefined) {
        segment = { index, startSample: -1, chunks: [], head: 0, queued: 0, played: 0, ended: false, text: '', words: undefined, wordsReported: 0 };
        segments.push(segment);
      }
      return segment;
    };

    const push = (segment: Segment, pcm: Int16Array): void => {
      if (pcm.length === 0) return;
      segment.chunks.push(pcm);
      segment.queued += pcm.length;
    };

    const convert = (pcm: Int16Array, sampleRate: number): Int16Array => {
      if (sampleRate === rate) return pcm;
      if (resampler === undefined || resampler.inputRate !== sampleRate) {
        resampler?.close();
        resampler = new Resampler(sampleRate, rate);
      }
      return float32ToInt16(resampler.process(int16ToFloat32(pcm)));
    };

    const reportWords = (segment: Segment, all: boolean): void => {
      const timings = segment.words;
      let count = segment.wordsReported;
      if (all) {
        count = timings?.length ?? words(segment.text).length;
      } else if (timings !== undefined) {
        let playedMs = (segment.played * 1000) / rate + 0.5;
        const heard = sink.heardMs?.(input.replyId);
        if (heard !== undefined) playedMs = Math.min(playedMs, heard - (segment.startSample * 1000) / rate + 0.5);
        while (count < timings.length && (timings[count]?.endMs ?? Infinity) <= playedMs) count++;
      }
      if (count > segment.wordsReported) {
        segment.wordsReported = count;
        report({ type: 'playout.word', segment: segment.index, words: count });
      }
    };

    /** Takes up to `n` samples of `segment` into `frame` at `offset`; returns how many it took. */
    const take = (segment: Segment, frame: Int16Array, offset: number, n: number): number => {
      let taken = 0;
      while (taken < n && segment.chunks.length > 0) {
        const chunk = segment.chunks[0] as Int16Array;
        const count = Math.min(n - taken, chunk.length - segment.head);
        frame.set(chunk.subarray(segment.head, segment.head + count), offset + taken);
        taken += count;
        segment.head += count;
        if (segment.head >= chunk.length) {
          segment.chunks.shift();
          segment.head = 0;
        }
      }
      segment.queued -= taken;
      segment.played += taken;
      return taken;
    };

    const onFrame = (): boolean => {
      for (;;) {
        const segment = segments[current];
        if (segment === undefined) {
          if (stream === 'finishing') {
            stream = 'drained';
            report({ type: 'playout.drained' });
          }
          return false;
        }
        if (segment.queued === 0 && segment.ended) {
          reportWords(segment, true);
          report({ type: 'playout.segmentDone', segment: segment.index });
          current += 1;
          continue;
        }
        if (segment.queued < frameSamples && !segment.ended) return false; // wait for more audio
        const frame = new Int16Array(frameSamples); // a short tail is padded with silence
        if (segment.startSample < 0) segment.startSample = replySamples;
        take(segment, frame, 0, frameSamples);
        if (replySamples === 0) report({ type: 'playout.started', sampleRate: rate });
        replySamples += frameSamples;
        sink.send(frame, { replyId: input.replyId });
        reportWords(segment, false);
        if (segment.queued === 0 && segment.ended) {
          reportWords(segment, true);
          report({ type: 'playout.segmentDone', segment: segment.index });
          current += 1;
        }
        return true;
      }
    };

    const pacer = new PlayoutClock({ onFrame, clock, frameMs: FRAME_MS, ...(logger ? { logger } : {}) });
    let resumeTimer: unknown;

    const kick = (): void => {
      if (userPaused) return;
      if (pacer.state === 'idle') pacer.start();
      else if (pacer.state === 'paused' && pacer.starved) pacer.resume();
    };

    receive((command) => {
      switch (command.type) {
        case 'playout.enqueue': {
          const segment = segmentFor(command.segment);
          if (command.words !== undefined) segment.words = [...command.words];
          push(segment, convert(command.pcm, command.sampleRate));
          kick();
          break;
        }
        case 'playout.segmentEnd': {
          const segment = segmentFor(command.segment);
          if (resampler !== undefined) push(segment, float32ToInt16(resampler.flush()));
          segment.ended = true;
          segment.text = command.text;
          if (segment.words === undefined) {
            segment.words = estimateWordTimings(command.text, ((segment.played + segment.queued) * 1000) / rate);
          }
          kick();
          break;
        }
        case 'playout.finish':
          if (stream === 'open') stream = 'finishing';
          kick();
          break;
        case 'playout.pause':
          userPaused = true;
          pacer.pause();
          break;
        case 'playout.resume':
          if (!userPaused) break;
          userPaused = false;
          // Not from inside the reply's transition that asked for it: a resumed playout may send a
          // burst of buffered frames at once, and `playout.started` must reach the session (and
          // `reply.audio_start` the wire) before the first of them.
          if (resumeTimer !== undefined) clock.clearTimeout(resumeTimer);
          resumeTimer = clock.setTimeout(() => {
            resumeTimer = undefined;
            if (userPaused) return;
            if (pacer.state === 'paused') pacer.resume();
            else kick();
          }, 0);
          break;
      }
    });

    return () => {
      if (resumeTimer !== undefined) clock.clearTimeout(resumeTimer);
      pacer.close();
      resampler?.close();
    };
  });
}
