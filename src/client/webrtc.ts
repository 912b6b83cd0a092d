/**
 * WebRTC audio for the client in Node, on werift: creates the peer, sends `webrtc.offer`, applies
 * `webrtc.answer` and ICE, Opus-encodes the caller's 48 kHz PCM and decodes the agent's audio.
 * werift (and optionally @evan/opus) are passed in, so nothing Node-only is imported by the SDK.
 */
import type * as Opus from '@evan/opus';
import type * as Werift from 'werift';
import { InvalidStateError, ProtocolError, type VoxError } from '../errors.js';
import type { IceServer } from '../protocol/messages.js';
import { RtpSequencer } from '../protocol/rtp-sequencer.js';
import type { VoxClient } from './vox-client.js';

export type WeriftModule = Pick<typeof Werift, 'RTCPeerConnection' | 'RtpHeader' | 'RtpPacket' | 'useOPUS'>;
export type OpusModule = Pick<typeof Opus, 'Encoder' | 'Decoder'>;

export interface ConnectWebRtcOptions {
  /** The werift module: `await import('werift')`. */
  readonly werift: WeriftModule;
  /** The @evan/opus module. Default: imported on first use. */
  readonly opus?: OpusModule;
  /** Send the offer before gathering and trickle candidates as `webrtc.ice`. Default true. */
  readonly trickle?: boolean;
  /** ICE servers. Default: the ones in `session.ready`. */
  readonly iceServers?: readonly IceServer[];
  /** Advertise exactly these host addresses (e.g. `['127.0.0.1']`). Default: all interfaces plus loopback. */
  readonly hostAddresses?: readonly string[];
  /** Time allowed for the answer and the DTLS connection. Default 15 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Opus target bitrate in bit/s. Default 32 000. */
  readonly opusBitrate?: number;
}

export interface WebRtcAudioLink {
  /** Rate of the PCM `sendPcm` takes and `onAudio` delivers. */
  readonly sampleRate: 48_000;
  /** Sends one 20 ms frame (960 samples) of 48 kHz mono PCM16. False if the link is down or the size is wrong. */
  sendPcm(frame: Int16Array): boolean;
  /** Decoded agent audio, 48 kHz mono PCM16 per RTP packet. */
  onAudio(listener: (pcm: Int16Array, sampleRate: number) => void): () => void;
  /** The peer connection failed or closed after connecting. */
  onClosed(listener: () => void): () => void;
  close(): Promise<void>;
}

const OPUS_FRAME_SIZES = new Set([120, 240, 480, 960, 1920, 2880]);

/** Negotiates WebRTC audio for a connected client (hello with `audio.transport: 'webrtc'`). */
export async function connectWebRtc(client: VoxClient, options: ConnectWebRtcOptions): Promise<WebRtcAudioLink> {
  const ready = client.session;
  if (client.status !== 'open' || ready === undefined) {
    throw new InvalidStateError('session_invalid_state', 'connectWebRtc() needs a connected client');
  }
  if (ready.audio.transport !== 'webrtc') {
    throw new InvalidStateError('session_invalid_state', 'the session was negotiated for websocket audio');
  }
  const { werift } = options;
  const opus = options.opus ?? (await importOpus());
  const trickle = options.trickle ?? true;
  const timeoutMs = options.connectTimeoutMs ?? 15_000;
  const only = options.hostAddresses;

  const pc = new werift.RTCPeerConnection({
    iceServers: (options.iceServers ?? ready.iceServers).map((server) => ({
      urls: server.urls,
      ...(server.username === undefined ? {} : { username: server.username }),
      ...(server.credential === undefined ? {} : { credential: server.credential }),
    })),
    iceUseIpv4: only === undefined,
    iceUseIpv6: only === undefined,
    iceAdditionalHostAddresses: [...(only ?? ['127.0.0.1'])],
    codecs: { audio: [werift.useOPUS()], video: [] },
  });
  const transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const encoder = new opus.Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
  encoder.bitrate = options.opusBitrate ?? 32_000;
  const decoder = new opus.Decoder({ channels: 1, sample_rate: 48_000 });
  const sequencer = new RtpSequencer();
  const audioListeners = new Set<(pcm: Int16Array, sampleRate: number) => void>();
  const closedListeners = new Set<() => void>();
  let connected = false;
  let closed = false;
  const cleanups: Array<() => void> = [];

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups.splice(0)) cleanup();
    for (const listener of closedListeners) safely(listener);
    audioListeners.clear();
    closedListeners.clear();
    await pc.close().catch(() => {});
  };

  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      if (closed || rtp.payload.length === 0) return;
      let pcm: Int16Array;
      try {
        const bytes = decoder.decode(rtp.payload);
        pcm = new Int16Array(bytes.byteLength / 2);
        new Uint8Array(pcm.buffer).set(bytes);
      } catch {
        return; // a corrupt packet costs 20 ms of audio, not the link
      }
      for (const listener of audioListeners) safely(() => listener(pcm, 48_000));
    });
  });
  pc.connectionStateChange.subscribe((state) => {
    if (state === 'connected') connected = true;
    if (connected && (state === 'failed' || state === 'closed')) void close();
  });

  cleanups.push(
    client.on('webrtc.ice', (message) => {
      const init =
        message.candidate === null || message.candidate === ''
          ? null
          : {
              candidate: message.candidate,
              ...(message.sdpMid == null ? {} : { sdpMid: message.sdpMid }),
              ...(message.sdpMLineIndex == null ? {} : { sdpMLineIndex: message.sdpMLineIndex }),
            };
      pc.addIceCandidate(init).catch(() => {});
    }),
  );

  try {
    const answer = waitFor(client, 'webrtc.answer', timeoutMs, cleanups);
    const offer = await pc.createOffer();
    if (trickle) {
      const subscription = pc.onIceCandidate.subscribe((candidate) => {
        client.send(
          candidate === undefined
            ? { type: 'webrtc.ice', candidate: null }
            : {
                type: 'webrtc.ice',
                candidate: candidate.candidate,
                sdpMid: candidate.sdpMid ?? null,
                sdpMLineIndex: candidate.sdpMLineIndex ?? null,
              },
        );
      });
      cleanups.push(() => subscription.unSubscribe());
      client.send({ type: 'webrtc.offer', sdp: offer.sdp, trickle: true });
      await pc.setLocalDescription(offer);
    } else {
      await pc.setLocalDescription(offer);
      client.send({ type: 'webrtc.offer', sdp: pc.localDescription?.sdp ?? offer.sdp });
    }
    const { sdp } = await answer;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    await whenConnected(pc, timeoutMs);
    connected = true;
  } catch (error) {
    await close();
    throw error instanceof Error && 'code' in error
      ? error
      : new InvalidStateError('internal', `WebRTC negotiation failed: ${String(error)}`, { cause: error });
  }

  return {
    sampleRate: 48_000,
    sendPcm(frame: Int16Array): boolean {
      if (closed || !connected || !OPUS_FRAME_SIZES.has(frame.length)) return false;
      const payload = encoder.encode(frame);
      const stamp = sequencer.next(frame.length, performance.now());
      const header = new werift.RtpHeader({
        sequenceNumber: stamp.sequenceNumber,
        timestamp: stamp.timestamp,
        marker: stamp.marker,
        payloadType: transceiver.sender.codec?.payloadType ?? 111,
      });
      const packet = new werift.RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      transceiver.sender.sendRtp(packet).catch(() => {});
      return true;
    },
    onAudio(listener) {
      audioListeners.add(listener);
      return () => audioListeners.delete(listener);
    },
    onClosed(listener) {
      closedListeners.add(listener);
      return () => closedListeners.delete(listener);
    },
    close,
  };
}

/** Resolves with the next `event` from the client; rejects on a server error or after `timeoutMs`. */
function waitFor<K extends 'webrtc.answer'>(
  client: VoxClient,
  event: K,
  timeoutMs: number,
  cleanups: Array<() => void>,
): Promise<{ sdp: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new InvalidStateError('internal', `no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const offAnswer = client.once(event, (message) => {
      done();
      resolve(message);
    });
    const offError = client.on('error', (error) => {
      if (error.source !== 'server') return;
      done();
      reject(errorOf(error));
    });
    const done = (): void => {
      clearTimeout(timer);
      offAnswer();
      offError();
    };
    cleanups.push(done);
  });
}

function errorOf(error: { code: VoxError['code']; message: string }): VoxError {
  return error.code.startsWith('protocol_')
    ? new ProtocolError(error.code, error.message)
    : new InvalidStateError(error.code, error.message);
}

function whenConnected(pc: InstanceType<WeriftModule['RTCPeerConnection']>, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unSubscribe();
      reject(new InvalidStateError('internal', `WebRTC did not connect within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = pc.connectionStateChange.subscribe((state) => {
      if (state !== 'connected' && state !== 'failed' && state !== 'closed') return;
      clearTimeout(timer);
      subscription.unSubscribe();
      if (state === 'connected') resolve();
      else reject(new InvalidStateError('internal', `WebRTC connection ${state}`));
    });
  });
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A listener's bug must not break the media path.
  }
}

async function importOpus(): Promise<OpusModule> {
  const specifier = '@evan/opus';
  return (await import(specifier)) as OpusModule;
}
