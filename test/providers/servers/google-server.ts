/**
 * A loopback gRPC server implementing `google.cloud.speech.v1.Speech/StreamingRecognize` and
 * `google.cloud.texttospeech.v1.TextToSpeech/SynthesizeSpeech` from the .proto files that ship in
 * the @google-cloud packages. Tests install handlers; calls and cancellations are recorded.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const protoRoot = (pkg: string): string => join(dirname(require.resolve(`${pkg}/package.json`)), 'build', 'protos');
const gaxRoot = join(dirname(require.resolve('google-gax')), '..', 'protos'); // build/src/index.js → build/protos

const definition = protoLoader.loadSync(
  ['google/cloud/speech/v1/cloud_speech.proto', 'google/cloud/texttospeech/v1/cloud_tts.proto'],
  {
    includeDirs: [protoRoot('@google-cloud/speech'), protoRoot('@google-cloud/text-to-speech'), gaxRoot],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  },
);

type Service = grpc.ServiceDefinition;
const speechService = definition['google.cloud.speech.v1.Speech'] as unknown as Service;
const ttsService = definition['google.cloud.texttospeech.v1.TextToSpeech'] as unknown as Service;

export interface RecognizeRequest {
  streamingConfig?: {
    config?: { encoding?: string; sampleRateHertz?: number; languageCode?: string; model?: string; enableAutomaticPunctuation?: boolean };
    interimResults?: boolean;
    singleUtterance?: boolean;
  };
  audioContent?: Buffer;
}

export type RecognizeCall = grpc.ServerDuplexStream<RecognizeRequest, unknown>;
export type RecognizeHandler = (call: RecognizeCall, requests: AsyncIterable<RecognizeRequest>) => void | Promise<void>;

export interface SynthesizeRequest {
  input?: { text?: string; ssml?: string };
  voice?: { languageCode?: string; name?: string };
  audioConfig?: { audioEncoding?: string; sampleRateHertz?: number; speakingRate?: number };
}
export type SynthesizeHandler = (
  request: SynthesizeRequest,
  call: grpc.ServerUnaryCall<SynthesizeRequest, unknown>,
) => Promise<{ audioContent: Uint8Array } | grpc.ServiceError | { hang: true }>;

export interface GoogleServerOptions {
  /** Serialize every response as bytes that do not decode as the response message. */
  readonly malformed?: boolean;
}

/**
 * Ends a streaming call with an error status. (Not `call.destroy(error)`: a destroyed stream never
 * sends its status, and the client would wait forever.)
 */
export function fail(call: RecognizeCall, error: grpc.ServiceError): void {
  call.emit('error', error);
}

/** A gRPC error status for a handler to return or emit. */
export function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export class GoogleServer {
  readonly #server = new grpc.Server();
  readonly recognizeHandlers: RecognizeHandler[] = [];
  /** Serves the StreamingRecognize calls `recognizeHandlers` has no handler for. Default: `echoRecognizer()`. */
  defaultRecognizeHandler: RecognizeHandler | undefined;
  readonly synthesizeHandlers: SynthesizeHandler[] = [];
  readonly synthesizeRequests: SynthesizeRequest[] = [];
  /** Every StreamingRecognize call: its requests and how it ended. */
  readonly recognizeCalls: { requests: RecognizeRequest[]; cancelled: boolean; halfClosed: boolean }[] = [];
  #cancelled: { resolve: (method: string) => void; promise: Promise<string> } = deferred();
  port = 0;

  /** Resolves with the method name the next time a client cancels a call. */
  get cancelled(): Promise<string> {
    return this.#cancelled.promise;
  }

  #noteCancel(method: string): void {
    const current = this.#cancelled;
    this.#cancelled = deferred();
    current.resolve(method);
  }

  constructor(options: GoogleServerOptions = {}) {
    const garbage = (): Buffer => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const patch = (service: Service): Service =>
      options.malformed
        ? Object.fromEntries(Object.entries(service).map(([k, m]) => [k, { ...m, responseSerialize: garbage }]))
        : service;
    this.#server.addService(patch(speechService), {
      StreamingRecognize: (call: RecognizeCall) => {
        const record = { requests: [] as RecognizeRequest[], cancelled: false, halfClosed: false };
        this.recognizeCalls.push(record);
        call.on('cancelled', () => {
          record.cancelled = true;
          this.#noteCancel('StreamingRecognize');
        });
        // Not `for await (… of call)`: a finished async iterator destroys the whole duplex, and the
        // server must still answer after the client half-closes.
        const requests = new RequestQueue();
        call.on('data', (request: RecognizeRequest) => {
          record.requests.push(request);
          requests.push(request);
        });
        call.on('end', () => {
          record.halfClosed = true;
          requests.end();
        });
        call.on('error', () => requests.end());
        const handler = this.recognizeHandlers.shift() ?? this.defaultRecognizeHandler ?? echoRecognizer();
        void Promise.resolve(handler(call, requests)).catch((error: unknown) => fail(call, status(grpc.status.INTERNAL, String(error))));
      },
    });
    this.#server.addService(patch(ttsService), {
      SynthesizeSpeech: (call: grpc.ServerUnaryCall<SynthesizeRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.synthesizeRequests.push(call.request);
        call.on('cancelled', () => this.#noteCancel('SynthesizeSpeech'));
        const handler = this.synthesizeHandlers.shift() ?? wavSynthesizer();
        void handler(call.request, call).then((result) => {
          if ('hang' in result) return;
          if (result instanceof Error) callback(result);
          else callback(null, result);
        });
      },
    });
  }

  async start(): Promise<this> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    return this;
  }

  /** Options for GoogleStt / GoogleTts that point them at this server. */
  get clientOptions(): { apiEndpoint: string; port: number; sslCreds: grpc.ChannelCredentials } {
    return { apiEndpoint: '127.0.0.1', port: this.port, sslCreds: grpc.credentials.createInsecure() };
  }

  async close(): Promise<void> {
    this.#server.forceShutdown();
  }
}

/** Requests of one call; several loops may consume it one after the other. */
class RequestQueue implements AsyncIterable<RecognizeRequest> {
  #items: RecognizeRequest[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(request: RecognizeRequest): void {
    this.#items.push(request);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecognizeRequest> {
    for (;;) {
      const item = this.#items.shift();
      if (item) {
        yield item;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}

function deferred(): { resolve: (method: string) => void; promise: Promise<string> } {
  let resolve: (method: string) => void = () => {};
  const promise = new Promise<string>((r) => {
    resolve = r;
  });
  return { resolve, promise };
}

/** A bare grpc-js TextToSpeech client (no google-gax), the baseline for bench/providers.ts. */
export function rawTtsClient(port: number): {
  synthesize(request: SynthesizeRequest): Promise<{ audioContent: Buffer }>;
  close(): void;
} {
  const Client = grpc.makeGenericClientConstructor(ttsService, 'TextToSpeech');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const method = ttsService['SynthesizeSpeech']!;
  return {
    synthesize: (request) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, (error, response) =>
          error ? reject(error) : resolve(response as { audioContent: Buffer }),
        ),
      ),
    close: () => client.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Handlers

export function result(transcript: string, isFinal: boolean, confidence = 0.9): unknown {
  return {
    results: [{ alternatives: [{ transcript, confidence: isFinal ? confidence : 0 }], isFinal, stability: isFinal ? 0 : 0.8 }],
  };
}

/**
 * A recognizer that "hears" one word per `bytesPerWord` of audio: it sends an interim result with
 * the words so far after each audio message, and a final result when the client half-closes.
 */
export function echoRecognizer(words: readonly string[] = ['book', 'a', 'table', 'for', 'two'], bytesPerWord = 3200): RecognizeHandler {
  return async (call, requests) => {
    let bytes = 0;
    let first = true;
    for await (const request of requests) {
      if (first) {
        first = false;
        if (!request.streamingConfig) {
          fail(call, status(grpc.status.INVALID_ARGUMENT, 'first request must carry streaming_config'));
          return;
        }
        continue;
      }
      bytes += request.audioContent?.length ?? 0;
      const heard = words.slice(0, Math.min(words.length, Math.floor(bytes / bytesPerWord)));
      if (heard.length) call.write(result(heard.join(' '), false));
    }
    call.write(result(words.join(' '), true));
    call.end();
  };
}

/** A LINEAR16 answer wrapped in a WAV header, the way Google sends it; `rate` overrides the request. */
export function wavSynthesizer(options: { rate?: number; seconds?: number; header?: boolean } = {}): SynthesizeHandler {
  return async (request) => {
    const rate = options.rate ?? request.audioConfig?.sampleRateHertz ?? 24_000;
    const samples = Math.round(rate * (options.seconds ?? 0.5));
    const pcm = Int16Array.from({ length: samples }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 220 * i) / rate)));
    const body = Buffer.from(pcm.buffer);
    if (options.header === false) return { audioContent: body };
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.writeUInt32LE(36 + body.length, 4);
    header.write('WAVE', 8);
    header.write('fmt ', 12);
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(rate, 24);
    header.writeUInt32LE(rate * 2, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36);
    header.writeUInt32LE(body.length, 40);
    return { audioContent: Buffer.concat([header, body]) };
  };
}
