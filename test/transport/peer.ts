/** Test helpers: a bare werift peer playing the browser, and a server transport connected to it. */
import { Decoder, Encoder } from '@evan/opus';
import { RTCPeerConnection, RtpHeader, RtpPacket, useOPUS, type RTCRtpTransceiver } from 'werift';
import { RtpSequencer } from '../../src/protocol/index.js';
import type { WebRtcPeerTransport } from '../../src/transport/webrtc.js';
import { toneFrames } from './tone.js';

export interface ClientPeer {
  readonly pc: RTCPeerConnection;
  readonly transceiver: RTCRtpTransceiver;
  /** Every inbound RTP packet, in arrival order. */
  readonly received: Array<{ marker: boolean; payload: Buffer; seq: number }>;
  /** Sends `frames` (48 kHz PCM16, 20 ms each) as Opus RTP at real-time pace. */
  sendTone(frames: readonly Int16Array[]): Promise<void>;
  /** The received packets decoded at 48 kHz. */
  decoded(): Int16Array[];
  close(): Promise<void>;
}

/** A werift peer that offers one sendrecv Opus track on loopback. */
export function clientPeer(): ClientPeer {
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: { audio: [useOPUS()], video: [] },
  });
  const transceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const received: ClientPeer['received'] = [];
  pc.onTrack.subscribe((track) =>
    track.onReceiveRtp.subscribe((rtp) => received.push({ marker: rtp.header.marker, payload: Buffer.from(rtp.payload), seq: rtp.header.sequenceNumber })),
  );
  const encoder = new Encoder({ channels: 1, sample_rate: 48_000, application: 'voip' });
  const sequencer = new RtpSequencer();
  return {
    pc,
    transceiver,
    received,
    async sendTone(frames) {
      for (const frame of frames) {
        const stamp = sequencer.next(frame.length, performance.now());
        const header = new RtpHeader({ ...stamp, payloadType: transceiver.sender.codec?.payloadType ?? 96 });
        await transceiver.sender.sendRtp(new RtpPacket(header, Buffer.from(encoder.encode(frame))));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    decoded() {
      const decoder = new Decoder({ channels: 1, sample_rate: 48_000 });
      return received.map(({ payload }) => {
        const bytes = decoder.decode(payload);
        return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      });
    },
    close: () => pc.close(),
  };
}

/** Offer → answer → DTLS up on both sides. */
export async function connect(transport: WebRtcPeerTransport, peer: ClientPeer): Promise<void> {
  const { pc } = peer;
  await pc.setLocalDescription(await pc.createOffer());
  await pc.setRemoteDescription({ type: 'answer', sdp: await transport.handleOffer(pc.localDescription?.sdp ?? '') });
  await transport.whenConnected();
  if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((state) => state === 'connected');
}

export { toneFrames };
