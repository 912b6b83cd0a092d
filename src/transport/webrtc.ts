/**
 * Audio over WebRTC with werift: one bidirectional Opus track. Inbound RTP is decoded to 48 kHz
 * mono PCM16; outbound 20 ms frames are Opus-encoded and sent as RTP with their own sequence
 * numbers, timestamps and talkspurt markers. Signalling (offer/answer/ICE) goes through the
 * methods below; carrying it over the wire is the server's job.
 *
 * It runs in the thread that creates it. The server creates it inside a transport worker thread
 * (webrtc-worker.ts, one per session) and gives the session a WebRtcWorkerTransport in its place.
 */
import { Decoder, Encoder } from '@evan/opus';
import {
  RTCPeerConnection,
  RtpHeader,
  RtpPacket,
  useOPUS,
  type MediaStreamTrack,
  type RTCIceCandidate,
  type RTCRtpTransceiver,
} from 'werift';
import { AudioFormatError, InvalidStateError, ProtocolError, toVoxError, type VoxError } from '../errors.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { RtpSequencer } from '../protocol/rtp-sequencer.js';
import { JitterBuffer, type JitterBufferOptions, type JitterOutput } from './jitter-buffer.js';
import type {
  AudioFormat,
  AudioListener,
  AudioTransport,
  TransportClosedInfo,
  Unsubscribe,
} from './audio-transport.js';
import { ListenerSet } from './listeners.js';
import { pcm16FromBytes } from './pcm16.js';
import { assertAudioOffer, stripCandidates } from './sdp-check.js';

export const OPUS_SAMPLE_RATE = 48_000;
/** Frame sizes (samples at 48 kHz) Opus can encode: 2.5, 5, 10, 20, 40 and 60 ms. */
/** Opus frame durations (2.5–60 ms), in ms. */
const OPUS_FRAME_MS = [2.5, 5, 10, 20, 40, 60];
/** TOC byte only: config 31 (CELT fullband, 20 ms), mono, one frame. Decoding it conceals 20 ms. */
const CONCEAL_PACKET = Uint8Array.of(0xf8);

/** PCM rates Opus encodes from and decodes to natively (the RTP clock stays 48 kHz). */
export type OpusPcmRate = 8_000 | 12_000 | 16_000 | 24_000 | 48_000;

export interface IceServerConfig {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** An ICE candidate as it travels in `webrtc.ice`; `candidate: null` (or a null object) ends the list. */
export interface IceCandidateInit {
  readonly candidate: string | null;
  readonly sdpMid?: string | null | undefined;
  readonly sdpMLineIndex?: number | null | undefined;
}

export interface WebRtcTransportOptions {
  /** STUN/TURN servers. Default `[]`: host candidates only (werift's own default is a public STUN host). */
  readonly iceServers?: readonly IceServerConfig[];
  /**
   * Advertise exactly these host addresses and no others (e.g. `['127.0.0.1']` for loopback).
   * Default: every non-internal IPv4/IPv6 interface plus `additionalHostAddresses`.
   */
  readonly hostAddresses?: readonly string[];
  /** Extra host addresses, normally excluded as internal. Default `['127.0.0.1']` so loopback peers connect. */
  readonly additionalHostAddresses?: readonly string[];
  /** UDP port range for ICE, `[min, max]`. Default: any port. */
  readonly icePortRange?: readonly [number, number];
  /** After the answer, the peer must connect within this time or the transport fails. Default 15 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Rate of the PCM delivered to `onAudio` (Opus decodes to it natively). Default 48 000. */
  readonly inputSampleRate?: OpusPcmRate;
  /** Rate of the frames `sendAudio` takes (Opus encodes from it natively). Default 48 000. */
  readonly outputSampleRate?: OpusPcmRate;
  /** Opus target bitrate in bit/s. Default 32 000. */
  readonly opusBitrate?: number;
  /** A pause longer than this between outbound frames starts a new talkspurt (RTP marker). Default 100 ms. */
  readonly talkspurtGapMs?: number;
  /** The inbound jitter buffer: its depth bounds (default 20–80 ms, adaptive) and concealment cap. */
  readonly jitter?: Pick<JitterBufferOptions, 'minDepthMs' | 'maxDepthMs' | 'maxConcealedFrames'>;
  readonly logger?: Logger;
}

export interface HandleOfferOptions {
  /** Answer without candidates and deliver them through `onIceCandidate` right after. Default false. */
  readonly trickle?: boolean;
}

export interface WebRtcStats {
  readonly packetsIn: number;
  readonly packetsOut: number;
  /** Inbound packets the jitter buffer declared lost (they did not come within its depth). */
  readonly packetsLost: number;
  /** Inbound packets that came after their slot was played or concealed (or twice): dropped. */
  readonly packetsLate: number;
  /** Inbound packets that came out of order but in time: played in order. */
  readonly packetsReordered: number;
  /** 20 ms frames of concealment the decoder made for lost packets. */
  readonly concealedFrames: number;
  /** The jitter buffer's current depth (20–80 ms, adaptive). */
  readonly jitterDepthMs: number;
  readonly decodeErrors: number;
  /** Outbound frames dropped because the peer was not connected yet. */
  readonly droppedFrames: number;
  /**
   * Outbound frames `clearOutput()` withdrew before they reached the socket (a reply was
   * cancelled). Always 0 here, where `sendAudio` sends synchronously; a transport in a worker
   * thread (webrtc-worker-transport.ts) can catch frames still crossing to its worker.
   */
  readonly framesCleared: number;
}

export type WebRtcConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

/**
 * A WebRTC audio transport as the server uses it, whether it runs in this thread
 * ({@link WebRtcTransport}) or in a transport worker (`WebRtcWorkerTransport`): the audio pipe
 * plus signalling, connection state and stats.
 */
export interface WebRtcPeerTransport extends AudioTransport {
  readonly kind: 'webrtc';
  readonly connectionState: WebRtcConnectionState;
  readonly stats: WebRtcStats;
  onIceCandidate(listener: (candidate: IceCandidateInit | null) => void): Unsubscribe;
  onConnectionStateChange(listener: (state: WebRtcConnectionState) => void): Unsubscribe;
  whenConnected(): Promise<void>;
  handleOffer(sdp: string, options?: HandleOfferOptions): Promise<string>;
  addIceCandidate(candidate: IceCandidateInit | null): Promise<void>;
}

export class WebRtcTransport implements WebRtcPeerTransport {
  readonly kind = 'webrtc' as const;
  readonly inputFormat: AudioFormat;
  readonly outputSampleRate: OpusPcmRate;
  readonly outputFrameSamples: number;
  readonly #frameSizes: ReadonlySet<number>;

  readonly #logger: Logger;
  readonly #pc: RTCPeerConnection;
  readonly #encoder: Encoder;
  readonly #decoder: Decoder;
  readonly #sequencer: RtpSequencer;
  readonly #connectTimeoutMs: number;
  readonly #audio: ListenerSet<[Int16Array, number]>;
  readonly #errors: ListenerSet<[VoxError]>;
  readonly #closedListeners: ListenerSet<[TransportClosedInfo]>;
  readonly #candidates: ListenerSet<[IceCandidateInit | null]>;
  readonly #states: ListenerSet<[WebRtcConnectionState]>;
  readonly #subscriptions: Array<{ unSubscribe: () => void }> = [];
  #transceiver: RTCRtpTransceiver | undefined;
  #state: WebRtcConnectionState = 'new';
  #offerHandled = false;
  /** Local candidates gathered while answering; emitted afterwards only for trickle answers. */
  #heldCandidates: Array<IceCandidateInit | null> | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  readonly #jitter: JitterBuffer;
  #closePromise: Promise<void> | undefined;
  #stats = { packetsIn: 0, packetsOut: 0, decodeErrors: 0, droppedFrames: 0 };

  constructor(options: WebRtcTransportOptions = {}) {
    this.#logger = (options.logger ?? silentLogger()).child({ transport: 'webrtc' });
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.#audio = new ListenerSet(this.#logger, 'audio');
    this.#errors = new ListenerSet(this.#logger, 'error');
    this.#closedListeners = new ListenerSet(this.#logger, 'closed');
    this.#candidates = new ListenerSet(this.#logger, 'iceCandidate');
    this.#states = new ListenerSet(this.#logger, 'state');
    this.#sequencer = new RtpSequencer({ clockRate: OPUS_SAMPLE_RATE, talkspurtGapMs: options.talkspurtGapMs ?? 100 });
    this.#jitter = new JitterBuffer((output) => this.#decodeInbound(output), options.jitter ?? {});

    // Opus decodes straight to the rate the consumer wants (16 kHz for VAD/STT saves a resampler)
    // and encodes from the rate the producer has; the RTP clock is 48 kHz whatever they are.
    const inputRate = options.inputSampleRate ?? OPUS_SAMPLE_RATE;
    const outputRate = options.outputSampleRate ?? OPUS_SAMPLE_RATE;
    this.inputFormat = { sampleRate: inputRate, channels: 1 };
    this.outputSampleRate = outputRate;
    this.outputFrameSamples = outputRate / 50;
    this.#frameSizes = new Set(OPUS_FRAME_MS.map((ms) => (ms * outputRate) / 1000));
    this.#encoder = new Encoder({ channels: 1, sample_rate: outputRate, application: 'voip' });
    this.#encoder.bitrate = options.opusBitrate ?? 32_000;
    this.#decoder = new Decoder({ channels: 1, sample_rate: inputRate });

    const only = options.hostAddresses;
    this.#pc = new RTCPeerConnection({
      iceServers: (options.iceServers ?? []).map((server) => ({
        urls: typeof server.urls === 'string' ? server.urls : [...server.urls],
        ...(server.username === undefined ? {} : { username: server.username }),
        ...(server.credential === undefined ? {} : { credential: server.credential }),
      })),
      iceUseIpv4: only === undefined,
      iceUseIpv6: only === undefined,
      iceAdditionalHostAddresses: [...(only ?? options.additionalHostAddresses ?? ['127.0.0.1'])],
      ...(options.icePortRange === undefined ? {} : { icePortRange: [...options.icePortRange] as [number, number] }),
      codecs: { audio: [useOPUS()], video: [] },
    });

    this.#subscriptions.push(
      this.#pc.onTrack.subscribe((track) => this.#attachTrack(track)),
      this.#pc.onIceCandidate.subscribe((candidate) => this.#localCandidate(candidate)),
      this.#pc.connectionStateChange.subscribe((state) => this.#connectionState(state)),
    );
  }

  get closed(): boolean {
    return this.#closePromise !== undefined;
  }

  get connectionState(): WebRtcConnectionState {
    return this.#state;
  }

  get stats(): WebRtcStats {
    const jitter = this.#jitter.stats;
    return {
      ...this.#stats,
      packetsLost: jitter.lost,
      packetsLate: jitter.late,
      packetsReordered: jitter.reordered,
      concealedFrames: jitter.concealed,
      jitterDepthMs: jitter.depthMs,
      framesCleared: 0,
    };
  }

  onAudio(listener: AudioListener): Unsubscribe {
    return this.#audio.add(listener);
  }

  onError(listener: (error: VoxError) => void): Unsubscribe {
    return this.#errors.add(listener);
  }

  onClosed(listener: (info: TransportClosedInfo) => void): Unsubscribe {
    return this.#closedListeners.add(listener);
  }

  /** Local ICE candidates to send as `webrtc.ice`; `null` marks the end of candidates. */
  onIceCandidate(listener: (candidate: IceCandidateInit | null) => void): Unsubscribe {
    return this.#candidates.add(listener);
  }

  onConnectionStateChange(listener: (state: WebRtcConnectionState) => void): Unsubscribe {
    return this.#states.add(listener);
  }

  /** Resolves once DTLS is up and media can flow; rejects if the transport ends first. */
  whenConnected(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.closed) return Promise.reject(new InvalidStateError('session_invalid_state', 'transport is closed'));
    return new Promise((resolve, reject) => {
      const offState = this.#states.add((state) => {
        if (state !== 'connected') return;
        offState();
        offClosed();
        resolve();
      });
      const offClosed = this.#closedListeners.add((info) => {
        offState();
        offClosed();
        reject(info.error ?? new InvalidStateError('session_invalid_state', `transport ${info.reason} before connecting`));
      });
    });
  }

  /**
   * Applies the client's offer and returns the answer SDP. The answer lists every local candidate
   * (werift gathers before answering) unless `trickle` is set, in which case the candidates follow
   * through `onIceCandidate` just after this promise resolves.
   * Rejects with ProtocolError for an unusable offer; the transport stays open for another try.
   */
  async handleOffer(sdp: string, options: HandleOfferOptions = {}): Promise<string> {
    if (this.closed) throw new InvalidStateError('session_invalid_state', 'transport is closed');
    if (this.#offerHandled) throw new InvalidStateError('session_invalid_state', 'renegotiation is not supported');
    assertAudioOffer(sdp);
    this.#offerHandled = true;
    // werift may gather while applying the offer or while answering: hold candidates from here on.
    this.#heldCandidates = [];
    try {
      await this.#pc.setRemoteDescription({ type: 'offer', sdp });
    } catch (error) {
      this.#offerHandled = false;
      this.#heldCandidates = undefined;
      throw new ProtocolError('protocol_invalid_message', `webrtc.offer: ${messageOf(error)}`, { cause: error });
    }
    const transceiver = this.#pc.getTransceivers().find((candidate) => candidate.kind === 'audio');
    if (transceiver === undefined) {
      this.#heldCandidates = undefined;
      throw new ProtocolError('protocol_invalid_message', 'webrtc.offer: no audio section');
    }
    transceiver.setDirection('sendrecv');
    this.#transceiver = transceiver;

    let answerSdp: string;
    try {
      const answer = await this.#pc.createAnswer();
      const local = await this.#pc.setLocalDescription(answer);
      answerSdp = this.#pc.localDescription?.sdp ?? local.toSdp().sdp;
    } catch (error) {
      this.#heldCandidates = undefined;
      throw new ProtocolError('protocol_invalid_message', `webrtc.offer: cannot answer: ${messageOf(error)}`, { cause: error });
    }
    const held = this.#heldCandidates ?? [];
    this.#heldCandidates = undefined;
    this.#armConnectTimer();
    if (options.trickle !== true) return answerSdp;
    // After the caller has had a chance to send the answer: candidates must not overtake it.
    setImmediate(() => {
      for (const candidate of held) if (!this.closed) this.#candidates.emit(candidate);
    });
    return stripCandidates(answerSdp);
  }

  /** Adds a remote candidate from `webrtc.ice`; `null` (or `candidate: null`) marks the end of candidates. */
  async addIceCandidate(candidate: IceCandidateInit | null): Promise<void> {
    if (this.closed) return;
    const text = candidate?.candidate ?? null;
    if (text !== null && text !== '' && !/^(a=)?candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ \S+/.test(text)) {
      throw new ProtocolError('protocol_invalid_message', 'webrtc.ice: malformed candidate');
    }
    try {
      await this.#pc.addIceCandidate(
        text === null || text === ''
          ? null
          : {
              candidate: text.replace(/^a=/, ''),
              ...(candidate?.sdpMid == null ? {} : { sdpMid: candidate.sdpMid }),
              ...(candidate?.sdpMLineIndex == null ? {} : { sdpMLineIndex: candidate.sdpMLineIndex }),
            },
      );
    } catch (error) {
      throw new ProtocolError('protocol_invalid_message', `webrtc.ice: ${messageOf(error)}`, { cause: error });
    }
  }

  sendAudio(frame: Int16Array): void {
    if (this.closed) return;
    if (!(frame instanceof Int16Array) || !this.#frameSizes.has(frame.length)) {
      this.#errors.emit(
        new AudioFormatError(
          'audio_invalid_format',
          `sendAudio expects 2.5–60 ms of ${this.outputSampleRate / 1000} kHz PCM16 (e.g. ${this.outputFrameSamples} samples), got ${frame instanceof Int16Array ? frame.length : typeof frame}`,
        ),
      );
      return;
    }
    const sender = this.#transceiver?.sender;
    if (this.#state !== 'connected' || sender === undefined) {
      this.#stats.droppedFrames++;
      return;
    }
    let payload: Uint8Array;
    try {
      payload = this.#encoder.encode(frame);
    } catch (error) {
      this.#errors.emit(new AudioFormatError('audio_invalid_samples', `Opus encode failed: ${messageOf(error)}`, { cause: error }));
      return;
    }
    const stamp = this.#sequencer.next((frame.length * OPUS_SAMPLE_RATE) / this.outputSampleRate, performance.now());
    const header = new RtpHeader({
      sequenceNumber: stamp.sequenceNumber,
      timestamp: stamp.timestamp,
      marker: stamp.marker,
      payloadType: sender.codec?.payloadType ?? 111,
    });
    this.#stats.packetsOut++;
    sender
      .sendRtp(new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)))
      .catch((error: unknown) => this.#logger.debug({ err: error }, 'RTP send failed'));
  }

  /**
   * Nothing to drop: this transport keeps no outbound queue, and werift's sender (pending RTP off,
   * its default) encrypts each packet and calls the UDP socket's `send()` before `sendAudio`
   * returns. So this always returns 0. Already beyond recall: datagrams Node still has to hand to
   * the kernel (dgram resolves the address on the next tick), the kernel's UDP send buffer, and the
   * peer's jitter buffer; werift also keeps its last 128 packets to answer RTCP NACKs (not
   * negotiated for Opus here, so a compliant peer does not ask).
   *
   * What it does do is reset the Opus encoder, whose look-ahead still holds the last 6.5 ms of the
   * cancelled audio and whose predictors would shape the next frame, so the next reply starts as a
   * fresh Opus stream; and it makes the next packet start a talkspurt (RTP marker).
   */
  clearOutput(): number {
    if (this.closed) return 0;
    try {
      this.#encoder.reset();
    } catch (error) {
      this.#logger.debug({ err: error }, 'Opus encoder reset failed');
    }
    this.#sequencer.markTalkspurt(performance.now());
    return 0;
  }

  close(): Promise<void> {
    return this.#finish({ reason: 'closed' });
  }

  #attachTrack(track: MediaStreamTrack): void {
    if (track.kind !== 'audio') return;
    this.#subscriptions.push(track.onReceiveRtp.subscribe((rtp) => this.#receiveRtp(rtp)));
  }

  #receiveRtp(rtp: RtpPacket): void {
    if (this.closed) return;
    this.#stats.packetsIn++;
    // Reordered, late and lost packets are the jitter buffer's business; it hands out payloads in
    // sequence order and a `lost` slot for each packet that did not come in time.
    this.#jitter.push(rtp.header.sequenceNumber, rtp.payload);
  }

  #decodeInbound(output: JitterOutput): void {
    if (this.closed) return;
    if (output.kind === 'packet' && output.payload.length === 0) return;
    let pcm: Int16Array;
    try {
      // A TOC-only packet (one byte: 20 ms CELT fullband) makes the decoder conceal exactly one frame
      // and keeps its state, so the next real packet decodes normally (the decoder refuses an empty one).
      pcm = pcm16FromBytes(this.#decoder.decode(output.kind === 'lost' ? CONCEAL_PACKET : output.payload));
    } catch (error) {
      this.#stats.decodeErrors++;
      this.#errors.emit(new AudioFormatError('audio_invalid_format', `Opus decode failed: ${messageOf(error)}`, { cause: error }));
      return;
    }
    this.#audio.emit(pcm, this.inputFormat.sampleRate);
  }

  #localCandidate(candidate: RTCIceCandidate | undefined): void {
    const init: IceCandidateInit | null =
      candidate === undefined
        ? null
        : { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? null, sdpMLineIndex: candidate.sdpMLineIndex ?? null };
    if (this.#heldCandidates !== undefined) this.#heldCandidates.push(init);
    else if (!this.closed) this.#candidates.emit(init);
  }

  #connectionState(state: WebRtcConnectionState): void {
    if (this.closed) return;
    this.#state = state;
    this.#logger.debug({ state }, 'connection state');
    this.#states.emit(state);
    if (state === 'connected') this.#clearConnectTimer();
    else if (state === 'failed') {
      void this.#finish({ reason: 'failed', error: new InvalidStateError('internal', 'WebRTC connection failed') });
    } else if (state === 'closed') void this.#finish({ reason: 'remote' });
  }

  #armConnectTimer(): void {
    this.#clearConnectTimer();
    this.#connectTimer = setTimeout(() => {
      if (this.#state === 'connected') return;
      void this.#finish({
        reason: 'failed',
        error: new InvalidStateError('internal', `WebRTC peer did not connect within ${this.#connectTimeoutMs} ms`),
      });
    }, this.#connectTimeoutMs);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  #finish(info: TransportClosedInfo): Promise<void> {
    if (this.#closePromise !== undefined) return this.#closePromise;
    this.#clearConnectTimer();
    this.#state = 'closed';
    this.#jitter.close();
    for (const subscription of this.#subscriptions) subscription.unSubscribe();
    this.#subscriptions.length = 0;
    this.#closedListeners.emit(info);
    for (const set of [this.#audio, this.#errors, this.#closedListeners, this.#candidates, this.#states]) set.clear();
    this.#closePromise = this.#pc.close().catch((error: unknown) => {
      this.#logger.debug({ err: toVoxError(error) }, 'peer connection close failed');
    });
    return this.#closePromise;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
