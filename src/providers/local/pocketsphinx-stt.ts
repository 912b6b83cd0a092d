/**
 * Offline speech-to-text: CMU pocketsphinx through the `asr` filter of the system ffmpeg (Debian's
 * ffmpeg is built with it: `apt-get install ffmpeg` brings pocketsphinx and its US English model).
 * The utterance goes to ffmpeg's stdin as WAV; the filter writes what it recognized as
 * `lavfi.asr.text` frame metadata, which `ametadata` prints to stdout. English only, and rough —
 * good enough for offline demos and tests, not for production.
 */
import { spawn } from 'node:child_process';
import { ProviderError } from '../../errors.js';
import type { PcmFloat, SttOptions, SttProvider, Transcript } from '../types.js';
import { float32ToInt16 } from '../../audio/frame.js';
import { encodeWav } from './pcm.js';
import { abortedError, throwIfAborted } from './streams.js';

export interface PocketsphinxSttOptions {
  /** The ffmpeg binary. Default `ffmpeg` (looked up on the PATH). */
  readonly ffmpegPath?: string;
  /** pocketsphinx acoustic model directory, dictionary and language model (`asr` filter options). */
  readonly hmm?: string;
  readonly dict?: string;
  readonly lm?: string;
  /** Longest a transcription may run before ffmpeg is killed. Default 30000 ms. */
  readonly timeoutMs?: number;
  readonly name?: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** A sentence for a person: what was found, or what is missing and how to get it. */
  readonly message: string;
}

const INSTALL_HINT =
  'install an ffmpeg built with pocketsphinx (Debian/Ubuntu: `apt-get install ffmpeg`), or configure a cloud STT provider';

/** Silence appended so the recognizer sees the end of the utterance (it emits text on speech → silence). */
const TAIL_SECONDS = 1;

export class PocketsphinxStt implements SttProvider {
  readonly name: string;
  readonly #options: PocketsphinxSttOptions;
  #probe: Promise<ProbeResult> | undefined;

  constructor(options: PocketsphinxSttOptions = {}) {
    this.#options = options;
    this.name = options.name ?? 'pocketsphinx';
  }

  /** Whether ffmpeg is on the PATH and has the `asr` filter. Cached after the first call. */
  probe(): Promise<ProbeResult> {
    this.#probe ??= probeFfmpeg(this.#options.ffmpegPath ?? 'ffmpeg');
    return this.#probe;
  }

  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    throwIfAborted(options.signal, 'stt');
    const probe = await this.probe();
    if (!probe.ok) throw new ProviderError('provider_unavailable', 'stt', probe.message);
    throwIfAborted(options.signal, 'stt');
    const wav = encodeWav(float32ToInt16(audio.samples), audio.sampleRate);
    const lines = await this.#run(wav, options.signal, audio.sampleRate);
    return { text: lines.join(' ').replace(/\s+/g, ' ').trim(), final: true };
  }

  #run(wav: Uint8Array, signal: AbortSignal, sampleRate: number): Promise<string[]> {
    const o = this.#options;
    const asr = ['asr', ...(['hmm', 'dict', 'lm'] as const).flatMap((k) => (o[k] ? [`${k}=${escapeFilterValue(o[k])}`] : []))].join(':');
    const filters = [
      ...(sampleRate === 16_000 ? [] : ['aresample=16000']),
      `apad=pad_dur=${TAIL_SECONDS}`,
      asr,
      'ametadata=mode=print:key=lavfi.asr.text:file=-',
    ].join(',');
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'wav', '-i', 'pipe:0', '-af', filters, '-f', 'null', '-'];
    return new Promise((resolve, reject) => {
      // -nostdin stops ffmpeg's interactive keys; the input still comes from pipe:0.
      const child = spawn(o.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let settled = false;
      const finish = (error: unknown, lines?: string[]): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(lines ?? []);
      };
      const onAbort = (): void => {
        child.kill('SIGKILL');
        finish(abortedError('stt', signal.reason));
      };
      const timeoutMs = o.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(new ProviderError('provider_timeout', 'stt', `pocketsphinx took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      child.stdout.setEncoding('utf8').on('data', (data: string) => (stdout += data));
      child.stderr.setEncoding('utf8').on('data', (data: string) => (stderr = (stderr + data).slice(-2000)));
      child.on('error', (error) => finish(new ProviderError('provider_unavailable', 'stt', `cannot run ffmpeg: ${error.message}; ${INSTALL_HINT}`, { cause: error })));
      child.on('close', (code) => {
        if (code !== 0) {
          finish(new ProviderError('provider_failed', 'stt', `ffmpeg exited with code ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}`));
          return;
        }
        const lines = stdout
          .split('\n')
          .filter((line) => line.startsWith('lavfi.asr.text='))
          .map((line) => line.slice('lavfi.asr.text='.length).trim())
          .filter(Boolean);
        finish(undefined, lines);
      });
      // ffmpeg may exit (and close stdin) before reading everything: that is reported by 'close'.
      child.stdin.on('error', () => {});
      child.stdin.end(wav);
    });
  }
}

/** Escapes a value for an ffmpeg filter option (paths with ':' or ',' or quotes). */
function escapeFilterValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "'\\\\''")}'`;
}

/** Runs `ffmpeg -filters` and looks for `asr`. */
export function probeFfmpeg(ffmpegPath = 'ffmpeg'): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn(ffmpegPath, ['-hide_banner', '-filters'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (data: string) => (out += data));
    child.on('error', () => resolve({ ok: false, message: `ffmpeg was not found (${ffmpegPath}); ${INSTALL_HINT}` }));
    child.on('close', () => {
      if (/^\s*\S*\s+asr\s+A->A/m.test(out)) resolve({ ok: true, message: `ffmpeg (${ffmpegPath}) has the pocketsphinx asr filter` });
      else resolve({ ok: false, message: `ffmpeg (${ffmpegPath}) was built without the pocketsphinx asr filter; ${INSTALL_HINT}` });
    });
  });
}
