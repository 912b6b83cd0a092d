/**
 * Streaming transcription over OpenAI's Realtime WebSocket: one transcription session per
 * `stream()` call (one user turn). The session does the voice detection, so server turn detection
 * is off and the segments are ours: audio is appended as it arrives and committed at each pause the
 * session reports and at the end of the audio. Each committed segment is transcribed on its own;
 * its deltas are interim results, its `completed` event the final one.
 */
import type { ClientRequest } from 'node:http';
import { connect as netConnect, type TcpNetConnectOpts } from 'node:net';
import type OpenAI from 'openai';
import { OpenAIRealtimeError } from 'openai/realtime/index';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type {
  RealtimeClientEvent,
  RealtimeError,
  RealtimeServerEvent,
  RealtimeTranscriptionSessionCreateRequest,
} from 'openai/resources/realtime/realtime';
import type { ClientOptions } from 'ws';
import { ProviderError } from '../../errors.js';
import { float32ToInt16 } from '../../audio/frame.js';
import { Resampler } from '../../audio/resampler.js';
import type { PcmFloat, SttOptions, SttProvider, SttStreamOptions, Transcript } from '../types.js';
import { httpStatusError, redactSecrets, toProviderError } from '../resilience.js';
import { AsyncChannel, abortedError, throwIfAborted } from '../local/streams.js';
import { createOpenAiClient, type OpenAiClientOptions } from './client.js';

/** `requestTimeoutMs` and `maxRetries` of the client options do not apply: the socket has its own time-outs. */
export interface OpenAiRealtimeSttOptions extends OpenAiClientOptions {
  /** Transcription model. Default `gpt-4o-mini-transcribe` (`gpt-4o-transcribe`, `whisper-1`, ... work too). */
  readonly model?: string;
  /** Default language when a call names none (ISO 639-1, or a BCP-47 tag whose first part is used). */
  readonly language?: string;
  /** Vocabulary or context hints for the transcription model. */
  readonly prompt?: string;
  /** Server-side noise reduction of the input audio. Default: off. */
  readonly noiseReduction?: 'near_field' | 'far_field';
  /**
   * A pause commits the audio since the last commit only when there is at least this much of it
   * (OpenAI rejects shorter commits); a shorter tail at the end of the audio is padded with
   * silence. Default 100 ms.
   */
  readonly minCommitMs?: number;
  /**
   * Audio since the last commit whose loudest 10 ms stays below this RMS level (full scale 1) is
   * silence: it is not committed on its own (at the end of a turn it would only buy a transcription
   * of nothing, and invite a hallucinated "Thank you."). 0 commits everything. Default 0.003 (−50 dBFS).
   */
  readonly silenceLevel?: number;
  /** From opening the socket until the server's `session.created`. Default 10000 ms. */
  readonly connectTimeoutMs?: number;
  /** From the end of the audio until every committed segment is transcribed. Default 15000 ms. */
  readonly completionTimeoutMs?: number;
  /** Audio per `input_audio_buffer.append` in `transcribe()`. Default 1000 ms. */
  readonly chunkMs?: number;
  readonly name?: string;
}

/** The Realtime API takes PCM16 at 24 kHz only. */
const RATE = 24_000;

/** OpenAI streaming transcription through a Realtime transcription session (WebSocket). */
export class OpenAiRealtimeStt implements SttProvider {
  readonly name: string;
  readonly model: string;
  readonly #client: OpenAI;
  readonly #options: OpenAiRealtimeSttOptions;

  constructor(options: OpenAiRealtimeSttOptions = {}) {
    this.#client = createOpenAiClient(options);
    this.#options = options;
    this.model = options.model ?? 'gpt-4o-mini-transcribe';
    this.name = options.name ?? `openai-realtime:${this.model}`;
  }

  /**
   * One finished utterance over the same socket protocol: append it all, commit once, wait for
   * the text. (Not `/audio/transcriptions`: this provider then needs one endpoint only, and batch and
   * streaming use the same model with the same session settings.)
   */
  async transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript> {
    throwIfAborted(options.signal, 'stt');
    const step = Math.max(1, Math.round(((this.#options.chunkMs ?? 1000) / 1000) * audio.sampleRate));
    async function* chunks(): AsyncGenerator<Float32Array> {
      for (let i = 0; i < audio.samples.length; i += step) yield audio.samples.subarray(i, i + step);
    }
    const finals: string[] = [];
    for await (const t of this.#open(chunks(), options, audio.sampleRate)) if (t.final && t.text) finals.push(t.text);
    return { text: finals.join(' '), final: true };
  }

  stream(audio: AsyncIterable<Float32Array>, options: SttStreamOptions): AsyncIterable<Transcript> {
    return this.#open(audio, options, 16_000);
  }

  #open(audio: AsyncIterable<Float32Array>, options: SttStreamOptions, inputRate: number): AsyncIterable<Transcript> {
    const o = this.#options;
    const language = options.language ?? o.language;
    const session: RealtimeTranscriptionSessionCreateRequest = {
      type: 'transcription',
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: RATE },
          transcription: {
            model: this.model,
            ...(language === undefined ? {} : { language: language.split(/[-_]/)[0]!.toLowerCase() }),
            ...(o.prompt === undefined ? {} : { prompt: o.prompt }),
          },
          turn_detection: null,
          ...(o.noiseReduction === undefined ? {} : { noise_reduction: { type: o.noiseReduction } }),
        },
      },
    };
    return new RealtimeTranscription(this.#client, session, audio, options, {
      model: this.model,
      inputRate,
      minCommitSamples: Math.round(((o.minCommitMs ?? 100) / 1000) * RATE),
      silenceLevel: o.silenceLevel ?? 0.003,
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      completionTimeoutMs: o.completionTimeoutMs ?? 15_000,
      headers: {
        ...(this.#client.organization ? { 'OpenAI-Organization': this.#client.organization } : {}),
        ...(this.#client.project ? { 'OpenAI-Project': this.#client.project } : {}),
        ...o.defaultHeaders,
      },
    }).results;
  }
}

interface Limits {
  readonly model: string;
  readonly inputRate: number;
  readonly minCommitSamples: number;
  readonly silenceLevel: number;
  readonly connectTimeoutMs: number;
  readonly completionTimeoutMs: number;
  readonly headers: Readonly<Record<string, string>>;
}

/** A committed segment awaiting its transcription, in commit order. */
interface Segment {
  /** Set by the server's `input_audio_buffer.committed`. */
  itemId: string | undefined;
  /** The deltas so far. */
  text: string;
  /** The `completed` transcript, once it arrived. */
  final: string | undefined;
}

/**
 * One `stream()` call: a socket, the audio pump and the segments in flight. Results leave in
 * commit order even when the server finishes a later segment first.
 */
class RealtimeTranscription {
  readonly results: AsyncChannel<Transcript>;
  readonly #session: RealtimeTranscriptionSessionCreateRequest;
  readonly #audio: AsyncIterator<Float32Array>;
  readonly #signal: AbortSignal;
  readonly #limits: Limits;
  readonly #resampler: Resampler;
  #socket: OpenAIRealtimeWS | undefined;
  /** Events waiting for the session to be created (everything, in order, until then). */
  #outbox: RealtimeClientEvent[] | undefined = [];
  readonly #segments: Segment[] = [];
  /** 24 kHz samples appended since the last commit, and the loudest 10 ms RMS among them. */
  #uncommitted = 0;
  #uncommittedLevel = 0;
  #audioDone = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    client: OpenAI,
    session: RealtimeTranscriptionSessionCreateRequest,
    audio: AsyncIterable<Float32Array>,
    options: SttStreamOptions,
    limits: Limits,
  ) {
    this.#session = session;
    this.#audio = audio[Symbol.asyncIterator]();
    this.#signal = options.signal;
    this.#limits = limits;
    this.#resampler = new Resampler(limits.inputRate, RATE);
    this.results = new AsyncChannel<Transcript>(() => this.#stop());
    if (this.#signal.aborted) {
      this.results.fail(abortedError('stt', this.#signal.reason));
      this.#stop();
      return;
    }
    this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    options.onPause?.(() => {
      if (!this.#stopped && !this.#audioDone) this.#commit(false);
    });
    this.#arm(limits.connectTimeoutMs, 'opening the OpenAI realtime session');
    void this.#connect(client);
    void this.#pump();
  }

  readonly #onAbort = (): void => {
    this.results.fail(abortedError('stt', this.#signal.reason));
    this.#stop();
  };

  async #connect(client: OpenAI): Promise<void> {
    let socket: OpenAIRealtimeWS;
    try {
      // `model` only satisfies the SDK: socketOptions() rewrites the request to a transcription session.
      socket = await OpenAIRealtimeWS.create(client, { model: this.#limits.model, options: socketOptions(client, this.#limits.headers) });
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#socket = socket;
    socket.on('error', (error) => this.#fail(error));
    socket.on('event', (event) => this.#onEvent(event));
    socket.socket.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    if (this.#stopped) socket.socket.terminate(); // aborted while the key was being resolved
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const next = await this.#audio.next();
        if (this.#stopped) return;
        if (next.done) break;
        if (next.value.length === 0) continue;
        this.#measure(next.value);
        this.#append(this.#resampler.process(next.value));
      }
      this.#append(this.#resampler.flush());
      this.#audioDone = true;
      this.#commit(true);
      if (!this.#outbox) this.#arm(this.#limits.completionTimeoutMs, 'transcribing the last segment');
      this.#finishIfDone();
    } catch (error) {
      // The audio source failed (or the resampler): not a connection problem.
      if (!this.#stopped) this.#fail(toProviderError(error, 'stt'));
    }
  }

  /** Loudest 10 ms window of `chunk` (at the input rate) into the level of the uncommitted audio. */
  #measure(chunk: Float32Array): void {
    const window = Math.max(1, Math.round(this.#limits.inputRate / 100));
    for (let start = 0; start < chunk.length; start += window) {
      const end = Math.min(chunk.length, start + window);
      let sum = 0;
      for (let i = start; i < end; i++) sum += chunk[i]! * chunk[i]!;
      this.#uncommittedLevel = Math.max(this.#uncommittedLevel, Math.sqrt(sum / (end - start)));
    }
  }

  #append(samples: Float32Array): void {
    if (samples.length === 0) return;
    const pcm = float32ToInt16(samples);
    this.#send({ type: 'input_audio_buffer.append', audio: Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength).toString('base64') });
    this.#uncommitted += samples.length;
  }

  /** Commits the audio since the last commit as a segment of its own, if it is worth transcribing. */
  #commit(atEnd: boolean): void {
    if (this.#uncommitted === 0 || this.#uncommittedLevel < this.#limits.silenceLevel) return;
    const missing = this.#limits.minCommitSamples - this.#uncommitted;
    if (missing > 0) {
      if (!atEnd) return; // too short to commit: it joins the next segment
      this.#append(new Float32Array(missing));
    }
    this.#send({ type: 'input_audio_buffer.commit' });
    this.#segments.push({ itemId: undefined, text: '', final: undefined });
    this.#uncommitted = 0;
    this.#uncommittedLevel = 0;
  }

  #send(event: RealtimeClientEvent): void {
    if (this.#outbox) this.#outbox.push(event);
    else this.#socket?.send(event);
  }

  #onEvent(event: RealtimeServerEvent): void {
    if (this.#stopped) return;
    switch (event.type) {
      case 'session.created': {
        if (!this.#outbox || !this.#socket) return;
        const queued = this.#outbox;
        this.#outbox = undefined;
        this.#arm(undefined);
        // Events are handled in order, so the audio may follow the update without waiting for `session.updated`.
        this.#socket.send({ type: 'session.update', session: this.#session });
        for (const e of queued) this.#socket.send(e);
        if (this.#audioDone) this.#arm(this.#limits.completionTimeoutMs, 'transcribing the last segment');
        this.#finishIfDone();
        return;
      }
      case 'input_audio_buffer.committed': {
        const segment = this.#segments.find((s) => s.itemId === undefined);
        if (segment) segment.itemId = event.item_id;
        return;
      }
      case 'conversation.item.input_audio_transcription.delta': {
        const segment = this.#segments.find((s) => s.itemId === event.item_id);
        if (!segment || segment.final !== undefined) return;
        segment.text += event.delta ?? '';
        if (segment === this.#segments[0]) this.#interim(segment);
        return;
      }
      case 'conversation.item.input_audio_transcription.completed': {
        const segment = this.#segments.find((s) => s.itemId === event.item_id);
        if (!segment) return;
        segment.final = typeof event.transcript === 'string' ? event.transcript.trim() : segment.text.trim();
        this.#deliver();
        return;
      }
      case 'conversation.item.input_audio_transcription.failed':
        this.#fail(serverError(event.error, 'could not transcribe a segment', event));
        return;
      default:
        return; // `error` arrives through the socket's error listener; the rest is not ours
    }
  }

  #interim(segment: Segment): void {
    const text = segment.text.trim();
    if (text) this.results.push({ text, final: false });
  }

  /** Sends the finals at the head of the commit order, then the interim text of the next segment. */
  #deliver(): void {
    let delivered = false;
    for (let head = this.#segments[0]; head?.final !== undefined; head = this.#segments[0]) {
      this.#segments.shift();
      this.results.push({ text: head.final, final: true });
      delivered = true;
    }
    const next = this.#segments[0];
    if (delivered && next) this.#interim(next);
    this.#finishIfDone();
  }

  /** Ends the results once the audio ended and every committed segment was delivered. */
  #finishIfDone(): void {
    if (this.#stopped || !this.#audioDone || this.#segments.length > 0) return;
    this.results.end();
    this.#stop();
  }

  #onClose(code: number, reason: string): void {
    if (this.#stopped) return;
    const detail = `${code}${reason ? ` ${redactSecrets(reason)}` : ''}`;
    const message = `the OpenAI realtime socket closed before the transcription finished (${detail})`;
    this.#fail(new ProviderError('provider_unavailable', 'stt', message, { retryable: true }));
  }

  #arm(ms: number | undefined, what = ''): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (ms === undefined || !Number.isFinite(ms) || ms <= 0 || this.#stopped) return;
    const message = `${what} took longer than ${ms} ms`;
    this.#timer = setTimeout(() => this.#fail(new ProviderError('provider_timeout', 'stt', message, { retryable: true })), ms);
  }

  #fail(error: unknown): void {
    if (this.#stopped) return;
    this.results.fail(mapRealtimeError(error, this.#signal));
    this.#stop();
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#arm(undefined);
    const socket = this.#socket?.socket;
    if (socket && socket.readyState === socket.OPEN) socket.close(1000, 'done');
    else if (socket && socket.readyState === socket.CONNECTING) socket.terminate();
    this.#resampler.close();
    void Promise.resolve(this.#audio.return?.()).catch(() => {});
  }
}

/**
 * Socket options for the SDK's client. The SDK always dials `wss://…/realtime?model=…`, which opens
 * a conversation session (OpenAI rejects a transcription model there). A transcription session is
 * opened with `?intent=transcription` and no model (the model goes into `session.update`), so the
 * request path is rewritten before the request is sent; and a plain `http://` or `ws://` base URL
 * (a local server) is dialled without TLS, the way the REST client treats it.
 */
function socketOptions(client: OpenAI, headers: Readonly<Record<string, string>>): ClientOptions {
  const base = new URL(client.baseURL);
  const plain = base.protocol === 'http:' || base.protocol === 'ws:';
  const port = Number(base.port || 80);
  // ws hands over the options of an HTTPS request (`host` already without IPv6 brackets).
  const tcp = ((options: TcpNetConnectOpts) => netConnect({ host: options.host, port })) as typeof netConnect;
  return {
    headers: { ...headers },
    ...(plain ? { createConnection: tcp } : {}),
    finishRequest: (request: ClientRequest) => {
      const url = new URL(request.path, base);
      url.searchParams.delete('model');
      url.searchParams.set('intent', 'transcription');
      request.path = url.pathname + url.search;
      request.end();
    },
  };
}

/** Anything the socket, the SDK or the server reported, as a ProviderError without credentials. */
function mapRealtimeError(error: unknown, signal: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal.aborted) return abortedError('stt', error);
  if (error instanceof OpenAIRealtimeError && error.error) return serverError(error.error, 'reported an error', error);
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  const status = /Unexpected server response: (\d{3})/.exec(message)?.[1];
  if (status !== undefined)
    return httpStatusError(Number(status), 'stt', `the OpenAI realtime endpoint refused the connection: ${message}`, cause);
  if (/could not parse/i.test(message))
    return new ProviderError('provider_bad_response', 'stt', `malformed event from the OpenAI realtime endpoint: ${message}`, { cause });
  return new ProviderError('provider_unavailable', 'stt', `OpenAI realtime connection failed: ${message}`, { cause, retryable: true });
}

/** A server `error` event or a failed transcription, by its error type and code. */
function serverError(
  error: Partial<Pick<RealtimeError, 'type' | 'code' | 'message'>> | undefined,
  what: string,
  cause: unknown,
): ProviderError {
  const { type, code } = error ?? {};
  const text = `OpenAI realtime ${what}: ${redactSecrets(error?.message ?? 'no message')}${code ? ` (${code})` : ''}`;
  if (type === 'authentication_error' || type === 'permission_error' || code === 'invalid_api_key')
    return new ProviderError('provider_auth', 'stt', text, { cause });
  if (code === 'insufficient_quota') return new ProviderError('provider_rate_limited', 'stt', text, { cause });
  if (type === 'rate_limit_error' || code === 'rate_limit_exceeded')
    return new ProviderError('provider_rate_limited', 'stt', text, { cause, retryable: true });
  if (type === 'server_error') return new ProviderError('provider_failed', 'stt', text, { cause, retryable: true });
  return new ProviderError('provider_failed', 'stt', text, { cause });
}
