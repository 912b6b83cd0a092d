/**
 * The local Motion Server's audio decode entry point for OGG_OPUS: each req_id is one Ogg Opus
 * stream (spec §4), demuxed and decoded as its CLIENT_AUDIO_INPUT chunks arrive, to PCM16 at the
 * session's sample_rate, which the animator then treats exactly like PCM_S16LE audio.
 * (PCM_S16LE needs no decoder; its byte alignment is handled in session.ts.)
 */
import { isOpusSampleRate, OggOpusReader } from '../../audio/ogg-opus.js';
import type { AudioFormat } from '../protocol/types.js';

/** Why a configure's audio settings cannot be served, or undefined when they can. */
export function audioFormatProblem(format: AudioFormat, sampleRate: number): string | undefined {
  if (format === 'pcm_s16le') return undefined;
  if (format === 'ogg_opus') {
    return isOpusSampleRate(sampleRate) ? undefined : `OGG_OPUS needs sample_rate 8000, 16000, 24000 or 48000 (Opus rates), not ${sampleRate}`;
  }
  return `audio_format ${String(format)} is not supported`;
}

/** The decoder of one request's audio; undefined for PCM_S16LE. Throws nothing: problems surface in push. */
export function requestDecoder(format: AudioFormat, sampleRate: number): OggOpusReader | undefined {
  if (format !== 'ogg_opus' || !isOpusSampleRate(sampleRate)) return undefined;
  return new OggOpusReader({ sampleRate });
}
