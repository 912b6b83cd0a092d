/**
 * Offline speech-to-text: CMU pocketsphinx through the `asr` filter of the system ffmpeg (Debian's
 * ffmpeg is built with it: `apt-get install ffmpeg` brings pocketsphinx and its US English model).
 *
 * One ffmpeg process per recognition, fed raw 16 kHz PCM on stdin while the user speaks. The filter
 * runs pocketsphinx's own voice activity detection and prints each speech segment's text
 * (`lavfi.asr.text` frame metadata, through `ametadata` with `direct=1` so nothing waits for exit)
 * about half a second after the voice stops. It never reports words before that, so every result is
 * a final segment. At a pause the session hints (`onPause`), the process gets that half second of
 * silence at once, and the segment's text arrives without waiting for it in real time.
 *
 * The default language model is generated at start-up from the phrases users of the offline demo
 * say (offline-phrases.ts, plus `offlineVocabulary`): a few hundred words instead of 130,000, which
 * is what makes the recognizer useful. English only.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { ProviderError } from '../../errors.js';
import { float32ToInt16 } from '../../audio/frame.js';
import { resampleAll } from '../../audio/resampler.js';
import type { PcmFloat, SttOptions, SttProvider, SttStreamOptions, Transcript } from '../types.js';
import { ACOUSTIC_MODEL_PATH, type LanguageModelFiles, writeAcousticModel, writeLanguageModel } from './language-model.js';
import { OFFLINE_PHRASES } from './offline-phrases.js';
import { AsyncChannel, abortedError, throwIfAborted } from './streams.js';

export interface PocketsphinxSttOptions {
  /** The ffmpeg binary. Default `ffmpeg` (looked up on the PATH). */
  readonly ffmpegPath?: string;
  /**
   * `'in-domain'` (default): a trigram model and dictionary generated at start-up from the built-in
   * phrases ({@link OFFLINE_PHRASES}) and `offlineVocabulary`. `'generic'`: the 130,000-word US
   * English model pocketsphinx ships, for speech the phrases do not cover (far less accurate).
   */
  readonly languageModel?: 'in-domain' | 'generic';
  /** Phrases added to the built-in ones for the in-domain model: what a playbook or app expects users to say. */
  readonly offlineVocabulary?: readonly string[];
  /**
   * pocketsphinx acoustic model directory, dictionary and language model (`asr` filter options).
   * `hmm` replaces the shipped acoustic model; `lm` or `dict` replaces the language model choice
   * (no in-domain model is generated; the one not given is the shipped one).
   */
  readonly hmm?: string;
  readonly dict?: string;
  readonly lm?: string;
  /**
   * The cepstral mean each process starts from (13 numbers, `-cmninit` of the acoustic model's
   * feat.params), or `'model'` for the acoustic model's own. The first segment of every recognition
   * is decoded with it. Default {@link DEFAULT_CMNINIT}.
   */
  readonly cmninit?: readonly number[] | 'model';
  /**
   * Silence written at each pause hint so that the filter's voice detector, which needs about
   * 0.5 s of silence, closes the segment at once. Default 600 ms.
   */
  readonly pauseFlushMs?: number;
  /** Silence written after the last audio, so the last segment is closed before stdin is. Default 600 ms. */
  readonly tailMs?: number;
  /**
   * Keep one ffmpeg process started, its models loaded, for the next recognition (started when a
   * recognition begins; `close()` stops it). It saves the model load (70–140 ms in-domain, 260–560 ms
   * generic) when the audio comes all at once, as in `transcribe()`; a stream loads the models while
   * the user speaks, so there it changes nothing measurable, even for a one-word turn (bench/stt.ts).
   * It costs an idle process (about 57 MB resident in-domain, 145 MB generic). Default false.
   */
  readonly warm?: boolean;
  /** Longest a recognition (a `stream()` or a `transcribe()`) may run before ffmpeg is killed. Default 30000 ms. */
  readonly timeoutMs?: number;
  readonly name?: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  /** A sentence for a person: what was found, or what is missing and how to get it. */
  readonly message: string;
}

/** The models a recognizer runs with; undefined fields are the shipped defaults. */
export interface RecognizerModel {
  readonly hmm?: string;
  readonly dict?: string;
  readonly lm?: string;
  /** The generated in-domain model, when there is one (its vocabulary and the words it had to drop). */
  readonly inDomain?: LanguageModelFiles;
}

/**
 * The cepstral mean of speech as voxstate's offline voices produce it: the average of pocketsphinx's
 * own estimates ("cmn_live.c: Update to" in its log) over twelve clips, four Flite voices (slt,
 * kal16, rms, awb) saying three sentences that appear in no test or benchmark. The shipped model's
 * value (41.00,-5.29,-0.12,5.09,…) is far from it, and each recognition's first segment is decoded
 * with the initial value: in bench/stt.ts the in-domain model gets 18–20% of words wrong with the
 * shipped value, 6% with this one. For other input (a real microphone), measure your own: decode a
 * few utterances with `logfn` set and average the "Update to" vectors (CMU Sphinx's advice).
 */
export const DEFAULT_CMNINIT: readonly number[] = [51.2, 4.8, 9.3, 21.1, -1.0, 1.2, 5.1, -6.8, -3.5, -4.8, 6.1, 1.8, 2.6];

const INSTALL_HINT =
  'install an ffmpeg built with pocketsphinx (Debian/Ubuntu: `apt-get install ffmpeg`), or configure a cloud STT provider';

const RATE = 16_000;
const samplesOf = (ms: number): number => Math.round((ms * RATE) / 1000);

export class PocketsphinxStt implements SttProvider {
  readonly name: string;
  readonly #options: PocketsphinxSttOptions;
  #probe: Promise<ProbeResult> | undefined;
  #model: Promise<RecognizerModel> | undefined;
  /** The process kept ready for the next recognition. */
  #spare: AsrProcess | undefined;
  readonly #running = new Set<AsrProcess>();
  #closed = false;

  constructor(options: PocketsphinxSttOptions = {}) {
    this.#options = options;
    this.name = options.name ?? 'pocketsphinx';
  }

  /** Whether ffmpeg is on the PATH and has the `asr` filter. Cached after the first call. */
  probe(): Promise<ProbeResult> {
    this.#probe ??= probeFfmpeg(this.#options.ffmpegPath ?? 'ffmpeg');
    return this.#probe;
  }

  /**
   * The models recognitions use, generating the in-domain files on the first call (tens of ms; the
   * files are reused across restarts). Call it at start-up so the first user turn does not wait.
   */
  prepare(): Promise<RecognizerModel> {
    if (this.#model === undefined) {
      const model = this.#loadModel();
      this.#model = model;
      // A failure is not remembered: the next recognition tries again.
      model.catch(() => {
        if (this.#model === model) this.#model = undefined;
      });
    }
    return this.#model;
  }

  async #loadModel(): Promise<RecognizerModel> {
    const o = this.#options;
    const cmninit = o.cmninit ?? DEFAULT_CMNINIT;
    let hmm = o.hmm;
    if (cmninit !== 'model') {
      try {
        hmm = await writeAcousticModel(o.hmm ?? ACOUSTIC_MODEL_PATH, cmninit);
      } catch (error) {
        throw unavailable(`cannot read the acoustic model (${o.hmm ?? ACOUSTIC_MODEL_PATH})`, error);
      }
    }
    const acoustic = hmm === undefined ? {} : { hmm };
    if (o.lm !== undefined || o.dict !== undefined || o.languageModel === 'generic')
      return { ...acoustic, ...(o.lm === undefined ? {} : { lm: o.lm }), ...(o.dict === undefined ? {} : { dict: o.dict }) };
    try {
      const files = await writeLanguageModel([...OFFLINE_PHRASES, ...(o.offlineVocabulary ?? [])]);
      return { ...acoustic, lm: files.lm, dict: files.dict, inDomain: files };
    } catch (error) {
      throw unavailable('cannot build the in-domain language model', error);
    }
  }

  /** Transcribes one finished utterance: the stream path, fed all at once; the segments joined. */
  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    const samples = audio.sampleRate === RATE ? audio.samples : resampleAll(audio.samples, audio.sampleRate, RATE);
    async function* once(): AsyncGenerator<Float32Array> {
      yield samples;
    }
    const segments: string[] = [];
    for await (const result of this.stream(once(), options)) segments.push(result.text);
    return { text: segments.join(' '), final: true };
  }

  /**
   * Streaming recognition (see {@link SttProvider.stream}): one ffmpeg process for the whole turn,
   * one final result per speech segment pocketsphinx detects, none for silence.
   */
  stream(audio: AsyncIterable<Float32Array>, options: SttStreamOptions): AsyncIterable<Transcript> {
    const o = this.#options;
    return new Recognition(audio, options, () => this.#start(options.signal), {
      pauseFlushSamples: samplesOf(o.pauseFlushMs ?? 600),
      tailSamples: samplesOf(o.tailMs ?? 600),
      timeoutMs: o.timeoutMs ?? 30_000,
    }).results;
  }

  /** A process for a new recognition (the spare when it is alive), and a new spare. */
  async #start(signal: AbortSignal): Promise<AsrProcess> {
    throwIfAborted(signal, 'stt');
    const probe = await this.probe();
    if (!probe.ok) throw new ProviderError('provider_unavailable', 'stt', probe.message);
    const model = await this.prepare();
    throwIfAborted(signal, 'stt');
    if (this.#closed) throw closedError();
    let asr = this.#spare;
    this.#spare = undefined;
    if (asr === undefined || !asr.alive) {
      asr?.kill();
      asr = this.#spawn(model);
    }
    const running = asr;
    this.#running.add(running);
    void running.exited.then(() => this.#running.delete(running));
    if (this.#options.warm ?? false) this.#spare = this.#spawn(model, { spare: true });
    return running;
  }

  #spawn(model: RecognizerModel, options: { spare?: boolean } = {}): AsrProcess {
    return new AsrProcess(this.#options.ffmpegPath ?? 'ffmpeg', ffmpegArgs(model), options.spare ?? false);
  }

  /** Stops the spare process and every running recognition (they fail with `provider_unavailable`). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const all = [...this.#running, ...(this.#spare ? [this.#spare] : [])];
    this.#spare = undefined;
    for (const asr of all) asr.kill(closedError());
    await Promise.all(all.map((asr) => asr.exited));
  }
}

function unavailable(what: string, cause: unknown): ProviderError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new ProviderError('provider_unavailable', 'stt', `${what}: ${reason}; ${INSTALL_HINT}`, { cause });
}

function closedError(): ProviderError {
  return new ProviderError('provider_unavailable', 'stt', 'PocketsphinxStt is closed');
}

/** The ffmpeg command line: raw PCM in on stdin, segment texts out on stdout, no other output. */
function ffmpegArgs(model: Pick<RecognizerModel, 'hmm' | 'dict' | 'lm'>): string[] {
  const settings = (['hmm', 'dict', 'lm'] as const).flatMap((k) => (model[k] ? [`${k}=${escapeFilterValue(model[k])}`] : []));
  const asr = settings.length === 0 ? 'asr' : `asr=${settings.join(':')}`;
  return [
    ...['-hide_banner', '-nostdin', '-loglevel', 'error'],
    // Without these, ffmpeg reads about a second of input before it starts the filter (and loads the models).
    ...['-probesize', '32', '-analyzeduration', '0'],
    ...['-f', 's16le', '-ar', String(RATE), '-ac', '1', '-i', 'pipe:0'],
    ...['-af', `${asr},ametadata=mode=print:key=lavfi.asr.text:file=-:direct=1`],
    ...['-f', 'null', '-'],
  ];
}

// ---------------------------------------------------------------------------------------------
// One ffmpeg process

interface AsrListener {
  text(text: string): void;
  /** The process is gone: undefined after a clean exit (stdin closed by us), else why. */
  exit(error: ProviderError | undefined): void;
}

/**
 * One ffmpeg running the asr filter. A spare is started before anyone needs it: it is fed one
 * packet of silence so that ffmpeg builds the filter (and pocketsphinx loads its models) now, and it
 * does not keep Node's event loop alive until a recognition adopts it.
 */
class AsrProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<void>;
  #listener: AsrListener | undefined;
  #outcome: { error: ProviderError | undefined } | undefined;
  #stdout = '';
  #stderr = '';
  #stdinClosed = false;
  #killedWith: ProviderError | undefined;
  #spare: boolean;

  constructor(ffmpegPath: string, args: readonly string[], spare: boolean) {
    this.#spare = spare;
    // -nostdin stops ffmpeg's interactive keys; the input still comes from pipe:0.
    this.#child = spawn(ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let exited!: () => void;
    this.exited = new Promise((resolve) => (exited = resolve));
    const child = this.#child;
    child.stdout.setEncoding('utf8').on('data', (data: string) => this.#onStdout(data));
    child.stderr.setEncoding('utf8').on('data', (data: string) => (this.#stderr = (this.#stderr + data).slice(-2000)));
    child.on('error', (error) => {
      this.#settle(new ProviderError('provider_unavailable', 'stt', `cannot run ffmpeg: ${error.message}; ${INSTALL_HINT}`, { cause: error }));
      exited();
    });
    child.on('close', (code, signal) => {
      if (this.#killedWith) this.#settle(this.#killedWith);
      else if (code === 0 && this.#stdinClosed) this.#settle(undefined);
      else {
        const last = this.#stderr.trim().split('\n').at(-1) ?? '';
        const how = code === null ? `was killed by ${signal}` : code === 0 ? 'exited before its input ended' : `exited with code ${code}`;
        this.#settle(new ProviderError('provider_failed', 'stt', `ffmpeg ${how}${last ? `: ${last}` : ''}`));
      }
      exited();
    });
    // ffmpeg may exit (and close stdin) before reading everything: that is reported by 'close'.
    child.stdin.on('error', () => {});
    if (spare) {
      // One packet of ffmpeg's raw PCM demuxer (1/25 s): enough for it to configure the filter graph.
      this.#write(new Int16Array(RATE / 25));
      setRef(child, false);
    }
  }

  /** Still running and accepting audio. */
  get alive(): boolean {
    return this.#outcome === undefined && !this.#stdinClosed && this.#killedWith === undefined;
  }

  /** Makes `listener` the receiver of this process's texts and exit (and a reason to keep Node running). */
  adopt(listener: AsrListener): void {
    this.#listener = listener;
    if (this.#spare) {
      this.#spare = false;
      setRef(this.#child, true);
    }
    if (this.#outcome) listener.exit(this.#outcome.error);
  }

  write(samples: Float32Array): void {
    this.#write(float32ToInt16(samples));
  }

  silence(samples: number): void {
    this.#write(new Int16Array(samples));
  }

  /** Writes `tailSamples` of silence and closes stdin: ffmpeg prints what is left and exits. */
  end(tailSamples: number): void {
    if (!this.alive) return;
    this.silence(tailSamples);
    this.#stdinClosed = true;
    this.#child.stdin.end();
  }

  /** SIGKILL, at once. The listener hears `reason` (if given) as the exit. */
  kill(reason?: ProviderError): void {
    if (this.#outcome === undefined && this.#killedWith === undefined) this.#killedWith = reason ?? abortedError('stt');
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    // Whoever kills a process may wait for its exit (close() does): a spare must keep Node running until then.
    setRef(this.#child, true);
    this.#child.kill('SIGKILL');
  }

  #write(pcm: Int16Array): void {
    if (!this.alive || this.#child.stdin.destroyed) return;
    // Not throttled: live audio is 32 kB/s, which ffmpeg reads many times faster; what transcribe()
    // writes at once is the utterance Node already holds.
    this.#child.stdin.write(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  #onStdout(data: string): void {
    this.#stdout += data;
    const lines = this.#stdout.split('\n');
    this.#stdout = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('lavfi.asr.text=')) continue;
      const text = line.slice('lavfi.asr.text='.length).replace(/\s+/g, ' ').trim();
      if (text.length > 0) this.#listener?.text(text);
    }
  }

  #settle(error: ProviderError | undefined): void {
    if (this.#outcome) return;
    this.#outcome = { error };
    this.#listener?.exit(error);
  }
}

/** Whether a child process (and its pipes) keeps Node's event loop alive. */
function setRef(child: ChildProcessWithoutNullStreams, ref: boolean): void {
  for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as { ref?: () => void; unref?: () => void }[])
    if (ref) handle.ref?.();
    else handle.unref?.();
}

// ---------------------------------------------------------------------------------------------
// One recognition

interface RecognitionLimits {
  readonly pauseFlushSamples: number;
  readonly tailSamples: number;
  readonly timeoutMs: number;
}

/** What the recognition sends its process, in order: audio, a pause's silence, the end. */
type Input = Float32Array | 'pause' | 'end';

/**
 * One `stream()` call: reads the audio from the start, starts (or takes) a process and sends it the
 * audio, a flush of silence at each pause and the end, in the order they happened (what came before
 * the process was running waits for it); turns the process's texts into final results. Abort,
 * timeout and an early `return()` kill the process.
 */
class Recognition {
  readonly results: AsyncChannel<Transcript>;
  readonly #audio: AsyncIterator<Float32Array>;
  readonly #signal: AbortSignal;
  readonly #limits: RecognitionLimits;
  #asr: AsrProcess | undefined;
  /** Input that came before the process was running. */
  #waiting: Input[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #audioEnded = false;

  constructor(audio: AsyncIterable<Float32Array>, options: SttStreamOptions, start: () => Promise<AsrProcess>, limits: RecognitionLimits) {
    this.#audio = audio[Symbol.asyncIterator]();
    this.#signal = options.signal;
    this.#limits = limits;
    this.results = new AsyncChannel<Transcript>(() => this.#stop());
    if (options.signal.aborted) {
      this.results.fail(abortedError('stt', options.signal.reason));
      this.#stop();
      return;
    }
    options.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(() => {
      this.#fail(new ProviderError('provider_timeout', 'stt', `pocketsphinx took longer than ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
    options.onPause?.(() => {
      if (!this.#audioEnded && !this.#stopped) this.#send('pause');
    });
    void this.#start(start);
    void this.#pump();
  }

  readonly #onAbort = (): void => this.#fail(abortedError('stt', this.#signal.reason));

  async #start(start: () => Promise<AsrProcess>): Promise<void> {
    try {
      const asr = await start();
      if (this.#stopped) {
        asr.kill();
        return;
      }
      this.#asr = asr;
      asr.adopt({
        text: (text) => this.results.push({ text, final: true }),
        exit: (error) => {
          if (error) this.#fail(error);
          else this.#finish();
        },
      });
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const input of waiting) this.#send(input);
    } catch (error) {
      this.#fail(error);
    }
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.#audio.next();
        if (this.#stopped) return;
        if (next.done) break;
        if (next.value.length > 0) this.#send(next.value);
      }
      this.#audioEnded = true;
      this.#send('end');
    } catch (error) {
      this.#fail(error);
    }
  }

  #send(input: Input): void {
    const asr = this.#asr;
    if (asr === undefined) this.#waiting.push(input);
    else if (input === 'pause') asr.silence(this.#limits.pauseFlushSamples);
    else if (input === 'end') asr.end(this.#limits.tailSamples);
    else asr.write(input);
  }

  #finish(): void {
    this.results.end();
    this.#stop();
  }

  #fail(error: unknown): void {
    this.results.fail(error);
    this.#stop();
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#waiting = [];
    clearTimeout(this.#timer);
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#asr?.kill();
    if (!this.#audioEnded) void Promise.resolve(this.#audio.return?.()).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------

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
