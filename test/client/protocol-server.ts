/**
 * A test-only server that speaks the voxstate wire protocol just enough to exercise the client:
 * hello → ready, resume → resumed (or refused), ping → pong, binary audio echo and WebRTC via the
 * real WebRtcTransport. Not the VoiceServer: no sessions, no machines.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CLOSE_CODES,
  parseClientMessage,
  serializeServerMessage,
  type ClientMessage,
  type ServerMessage,
} from '../../src/protocol/index.js';
import { WebRtcTransport } from '../../src/transport/index.js';

export interface ProtocolServer {
  readonly url: string;
  /** Every parsed client message, in arrival order, with the connection number it came on. */
  readonly received: Array<{ connection: number; message: ClientMessage }>;
  /** Binary frames received from clients. */
  readonly binary: Buffer[];
  /** Connections accepted so far (refused upgrades are not counted). */
  connections(): number;
  /** Sockets currently open. */
  sockets(): WebSocket[];
  send(message: ServerMessage): void;
  sendBinary(data: Buffer): void;
  sendRaw(text: string): void;
  /** Kills every socket without a closing handshake: what a network drop looks like (1006). */
  dropAll(): void;
  /** Refuse the next `count` WebSocket upgrades. */
  refuseNext(count: number): void;
  answerPings: boolean;
  acceptResume: boolean;
  close(): Promise<void>;
}

export async function startProtocolServer(): Promise<ProtocolServer> {
  let refuse = 0;
  let connectionCount = 0;
  const sessionId = 'sess_test';
  const resumeToken = 'resume_secret';
  const received: ProtocolServer['received'] = [];
  const binary: Buffer[] = [];
  const transports = new Set<WebRtcTransport>();

  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, callback) => {
      if (refuse > 0) {
        refuse--;
        callback(false, 503, 'try later');
      } else callback(true);
    },
  });
  await once(wss, 'listening');

  const server: ProtocolServer = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    received,
    binary,
    answerPings: true,
    acceptResume: true,
    connections: () => connectionCount,
    sockets: () => [...wss.clients],
    send: (message) => {
      for (const socket of wss.clients) socket.send(serializeServerMessage(message));
    },
    sendBinary: (data) => {
      for (const socket of wss.clients) socket.send(data, { binary: true });
    },
    sendRaw: (text) => {
      for (const socket of wss.clients) socket.send(text);
    },
    dropAll: () => {
      for (const socket of wss.clients) socket.terminate();
    },
    refuseNext: (count) => {
      refuse = count;
    },
    close: async () => {
      for (const transport of transports) await transport.close();
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };

  wss.on('connection', (socket) => {
    const connection = ++connectionCount;
    let transport: WebRtcTransport | undefined;
    const reply = (message: ServerMessage): void => socket.send(serializeServerMessage(message));

    socket.on('close', () => {
      if (transport !== undefined) void transport.close();
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) {
        binary.push(data as Buffer);
        return;
      }
      const parsed = parseClientMessage(data as Buffer);
      if (!parsed.ok) {
        reply({ type: 'error', code: parsed.error.code, message: parsed.error.message, fatal: true });
        socket.close(CLOSE_CODES[parsed.error.code], parsed.error.code);
        return;
      }
      const message = parsed.message;
      received.push({ connection, message });
      switch (message.type) {
        case 'session.hello': {
          const webrtc = message.audio.transport === 'webrtc';
          reply({
            type: 'session.ready',
            sessionId,
            resumeToken,
            protocol: 1,
            iceServers: [],
            audio: {
              transport: message.audio.transport,
              format: webrtc ? 'opus' : 'pcm16',
              sampleRate: webrtc ? 48_000 : message.audio.sampleRate,
              channels: 1,
              frameMs: 20,
            },
          });
          break;
        }
        case 'session.resume':
          if (server.acceptResume && message.sessionId === sessionId && message.resumeToken === resumeToken) {
            reply({ type: 'session.resumed', sessionId, state: 'speaking', voice: 'silent' });
          } else {
            reply({ type: 'error', code: 'session_resume_refused', message: 'resume refused', fatal: true });
            socket.close(CLOSE_CODES.session_resume_refused, 'session_resume_refused');
          }
          break;
        case 'ping':
          if (server.answerPings) reply({ type: 'pong', t: message.t });
          break;
        case 'webrtc.offer': {
          const current = new WebRtcTransport({ hostAddresses: ['127.0.0.1'], connectTimeoutMs: 10_000 });
          transport = current;
          transports.add(current);
          current.onAudio((pcm) => current.sendAudio(pcm)); // echo
          current.onIceCandidate((candidate) =>
            reply({
              type: 'webrtc.ice',
              candidate: candidate?.candidate ?? null,
              ...(candidate?.sdpMid == null ? {} : { sdpMid: candidate.sdpMid }),
              ...(candidate?.sdpMLineIndex == null ? {} : { sdpMLineIndex: candidate.sdpMLineIndex }),
            }),
          );
          current.handleOffer(message.sdp, { trickle: message.trickle ?? false }).then(
            (sdp) => reply({ type: 'webrtc.answer', sdp }),
            (error: { code: 'protocol_invalid_message'; message: string }) =>
              reply({ type: 'error', code: error.code, message: error.message, fatal: false }),
          );
          break;
        }
        case 'webrtc.ice':
          transport?.addIceCandidate(message).catch(() => {});
          break;
        case 'session.close':
          socket.close(1000, 'bye');
          break;
        default:
          break;
      }
    });
  });

  return server;
}
