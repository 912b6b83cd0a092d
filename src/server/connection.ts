/**
 * One client WebSocket: the only place where a socket, the wire codec and a session host meet.
 * JSON text frames are protocol messages (validated); binary frames are PCM16 audio for the
 * websocket transport. Bad input gets an `error` with a stable code; input the session cannot
 * survive closes the socket with the documented close code. Nothing here can affect another
 * connection's session.
 */
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import { type ErrorCode, VoxError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { parseClientMessage, serializeServerMessage } from '../protocol/codec.js';
import { closeCodeFor, CLOSE_NORMAL } from '../protocol/error-codes.js';
import { clientErrorMessage } from '../protocol/error-messages.js';
import { PROTOCOL_VERSION, type ClientMessage, type ClientMessageOf, type NegotiatedAudio, type ServerMessage } from '../protocol/messages.js';
import { newResumeToken } from '../session/session.js';
import type { WebRtcPeerTransport } from '../transport/webrtc.js';
import { WebSocketAudioTransport } from '../transport/websocket-audio.js';
import type { ServerContext } from './context.js';
import { clientAddress } from './http-access.js';
import type { SessionHost } from './session-host.js';

const FRAME_MS = 20;

/**
 * The PCM rates a WebRTC session works at on the server: Opus decodes the caller straight to 16 kHz
 * (what VAD and STT take: no resampler) and encodes the agent from 24 kHz (where most TTS voices
 * are). On the wire it is Opus with a 48 kHz RTP clock either way.
 */
export const WEBRTC_PCM_RATES = { input: 16_000, output: 24_000 } as const;

export class ClientConnection {
  readonly #socket: WebSocket;
  readonly #ctx: ServerContext;
  readonly #ip: string;
  readonly #openedAt: number;
  #logger: Logger;
  #host: SessionHost | undefined;
  #wsAudio: WebSocketAudioTransport | undefined;
  #webrtc: WebRtcPeerTransport | undefined;
  #closed = false;
  #pending: Promise<void> = Promise.resolve();
  #bucket: number;
  #bucketAt: number;
  #alive = true;
  /** Stops counting this connection's WebRTC transports into the metrics (at the latest when the socket closes). */
  readonly #untrackWebRtc: Array<() => void> = [];
  /** When the client last sent anything (a message, an audio frame, WebRTC audio): performance.now() ms. */
  #lastActivity = performance.now();
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: WebSocket, request: IncomingMessage, ctx: ServerContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    // Behind trusted proxies the client is the address they forwarded (per-address limits count it).
    this.#ip = clientAddress(request, ctx.options.trustProxyHops);
    this.#openedAt = Date.now();
    this.#logger = ctx.logger.child({ remote: this.#ip });
    this.#bucket = ctx.options.maxMessagesPerSecond;
    this.#bucketAt = Date.now();
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
    socket.on('error', (error) => this.#logger.debug({ err: error }, 'socket error'));
    socket.on('pong', () => {
      this.#alive = true;
    });
    this.#armIdle(ctx.options.connectionIdleTimeoutMs);
  }

  /**
   * The idle timer: one timeout per connection, not one per message. When it fires it looks at
   * the last activity and either closes the connection or waits for the rest of the period.
   * Pongs do not count: ws answers pings by itself, so they prove the peer's TCP stack is alive,
   * not that a client is using the connection.
   */
  #armIdle(ms: number): void {
    if (this.#ctx.options.connectionIdleTimeoutMs <= 0 || this.#closed) return;
    this.#idleTimer = setTimeout(() => this.#checkIdle(), ms);
    this.#idleTimer.unref();
  }

  #checkIdle(): void {
    this.#idleTimer = undefined;
    if (this.#closed) return;
    const limit = this.#ctx.options.connectionIdleTimeoutMs;
    const quiet = performance.now() - this.#lastActivity;
    if (quiet >= limit) {
      this.#logger.info({ quietMs: Math.round(quiet) }, 'client sent nothing; closing the idle connection');
      this.#error('connection_idle', `nothing received for ${limit} ms`, true);
      return;
    }
    this.#armIdle(limit - quiet);
  }

  /** Heartbeat: called periodically by the server; a socket that did not answer the last ping is dropped. */
  heartbeat(): void {
    if (this.#closed) return;
    if (!this.#alive) {
      this.#logger.info('client stopped answering pings');
      this.#socket.terminate();
      return;
    }
    this.#alive = false;
    this.#socket.ping();
  }

  get sessionId(): string | undefined {
    return this.#host?.id;
  }

  /** Server shutdown: tell the client and close. */
  shutdown(): void {
    this.#close(1001, 'server shutting down');
  }

  #send(message: ServerMessage): void {
    if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) return;
    this.#socket.send(serializeServerMessage(message));
  }

  #error(code: ErrorCode, message: string, fatal = false): void {
    // Server-side failures reach the client as a generic message; the application's error event keeps the detail.
    this.#send({ type: 'error', code, message: clientErrorMessage(code, message), fatal });
    this.#ctx.reportError(this.#host?.id, code, message);
    if (fatal) this.#close(closeCodeFor(code), code);
  }

  #close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#socket.close(code, reason);
  }

  #allowMessage(): boolean {
    const now = Date.now();
    const rate = this.#ctx.options.maxMessagesPerSecond;
    this.#bucket = Math.min(rate, this.#bucket + ((now - this.#bucketAt) / 1000) * rate);
    this.#bucketAt = now;
    if (this.#bucket < 1) return false;
    this.#bucket -= 1;
    return true;
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closed) return;
    this.#lastActivity = performance.now();
    if (isBinary) {
      if (this.#wsAudio === undefined) {
        this.#error('protocol_not_ready', this.#host === undefined ? 'audio before session.ready' : 'this session uses WebRTC audio, not binary frames');
        return;
      }
      // Frame size and inbound rate are checked by the transport (docs/configuration.md, audioInput).
      this.#wsAudio.receive(data as Buffer);
      return;
    }
    if (!this.#allowMessage()) {
      this.#error('session_limit', `more than ${this.#ctx.options.maxMessagesPerSecond} messages per second`, true);
      return;
    }
    const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)).toString('utf8');
    const parsed = parseClientMessage(text, this.#ctx.options.maxMessageBytes);
    if (!parsed.ok) {
      this.#error(parsed.error.code, parsed.error.message, parsed.error.code === 'protocol_unsupported_version');
      return;
    }
    // Messages are handled one at a time, in order, even when one of them awaits.
    this.#pending = this.#pending.then(() => this.#handle(parsed.message)).catch((error: unknown) => {
      const code = error instanceof VoxError ? error.code : 'internal';
      this.#logger.warn({ err: error }, 'message handling failed');
      this.#error(code, error instanceof Error ? error.message : String(error));
    });
  }

  async #handle(message: ClientMessage): Promise<void> {
    if (this.#closed) return;
    switch (message.type) {
      case 'ping':
        this.#send({ type: 'pong', t: message.t });
        return;
      case 'session.hello':
        return this.#hello(message);
      case 'session.resume':
        return this.#resume(message);
      default:
        break;
    }
    const host = this.#host;
    if (host === undefined) {
      this.#error('protocol_not_ready', `${message.type} before session.ready`);
      return;
    }
    switch (message.type) {
      case 'user.text':
        await host.userText(message.text);
        return;
      case 'session.interrupt':
        host.interrupt();
        return;
      case 'playback.progress':
        this.#wsAudio?.reportPlaybackProgress({ replyId: message.replyId, playedMs: message.playedMs });
        return;
      case 'session.close':
        host.close(message.reason ?? 'client closed');
        this.#close(CLOSE_NORMAL, 'session closed');
        return;
      case 'webrtc.offer': {
        const transport = this.#webrtc;
        if (transport === undefined) {
          this.#error('session_invalid_state', 'this session uses websocket audio; webrtc.offer is not expected');
          return;
        }
        const trickle = message.trickle === true;
        const answer = await transport.handleOffer(message.sdp, { trickle });
        this.#send({ type: 'webrtc.answer', sdp: answer });
        return;
      }
      case 'webrtc.ice': {
        if (this.#webrtc === undefined) {
          this.#error('session_invalid_state', 'webrtc.ice without a WebRTC session');
          return;
        }
        await this.#webrtc.addIceCandidate(message);
        return;
      }
    }
  }

  async #hello(message: ClientMessageOf<'session.hello'>): Promise<void> {
    if (this.#host !== undefined) {
      this.#error('session_invalid_state', 'session.hello on a connection that already has a session');
      return;
    }
    if (message.protocol !== PROTOCOL_VERSION) {
      this.#error('protocol_unsupported_version', `protocol ${message.protocol} is not supported (this server speaks ${PROTOCOL_VERSION})`, true);
      return;
    }
    const principal = await this.#ctx.authenticate(message.token);
    if (principal === false) {
      this.#error('auth_failed', 'authentication failed', true);
      return;
    }
    const refusal = this.#ctx.registry.refusal(this.#ip, principal);
    if (refusal !== undefined) {
      this.#error(refusal.code, refusal.message, true);
      return;
    }
    const audio: NegotiatedAudio =
      message.audio.transport === 'webrtc'
        ? { transport: 'webrtc', format: 'opus', sampleRate: 48_000, channels: 1, frameMs: FRAME_MS }
        : { transport: 'websocket', format: 'pcm16', sampleRate: message.audio.sampleRate, channels: 1, frameMs: FRAME_MS };
    const playbook = message.options?.playbook;
    if (playbook !== undefined && !this.#ctx.hasPlaybook(playbook)) {
      this.#error('session_invalid_state', `no playbook named '${playbook}' on this server`, true);
      return;
    }
    const sessionId = randomUUID();
    const resumeToken = newResumeToken();
    const host = this.#ctx.createHost({
      sessionId,
      resumeToken,
      audio,
      ...(playbook === undefined ? {} : { playbook: { name: playbook } }),
      ...(message.options?.language === undefined ? {} : { language: message.options.language }),
      ...(message.options?.voice === undefined ? {} : { voice: message.options.voice }),
    });
    this.#ctx.registry.add(host, this.#ip, principal);
    // The session's logger (session, turn and state on every line), for this connection and its transport.
    this.#logger = host.logger.child({ remote: this.#ip });
    this.#bind(host, audio);
    this.#send({ type: 'session.ready', sessionId, resumeToken, protocol: PROTOCOL_VERSION, iceServers: [...this.#ctx.options.iceServers], audio });
    host.start();
    this.#ctx.connected(this, { sessionId, remoteAddress: this.#ip, resumed: false, metadata: message.options?.metadata });
  }

  async #resume(message: ClientMessageOf<'session.resume'>): Promise<void> {
    if (this.#host !== undefined) {
      this.#error('session_invalid_state', 'session.resume on a connection that already has a session');
      return;
    }
    if (message.protocol !== PROTOCOL_VERSION) {
      this.#error('protocol_unsupported_version', `protocol ${message.protocol} is not supported (this server speaks ${PROTOCOL_VERSION})`, true);
      return;
    }
    // Live here and waiting for a resume: the session itself checks the token and issues a new one.
    const local = this.#ctx.registry.get(message.sessionId);
    let host: SessionHost | undefined;
    let resumeToken: string | undefined;
    if (local !== undefined && !local.closed) {
      if (local.connected) {
        this.#error('session_resume_refused', 'the session cannot be resumed with this token', true);
        return;
      }
      // (One store read first: a copy left here when the session moved to another node must not take it back.)
      if (await this.#ctx.checkHeld(local)) resumeToken = local.resume(message.resumeToken);
      if (resumeToken !== undefined) host = local;
    }
    if (host === undefined || resumeToken === undefined) {
      // Not live here, or it refused the token (which another node may have replaced after resuming
      // the session there): the store's record decides. A restored session counts against the limits
      // like a new one, under the principal it was opened with.
      const restored = await this.#ctx.restore(message.sessionId, message.resumeToken, (principal) => this.#ctx.registry.refusal(this.#ip, principal));
      if (!restored.ok) {
        this.#error(restored.code, restored.message, true);
        return;
      }
      if (this.#closed) {
        // The client left while the record was being claimed: the session waits for another resume.
        this.#ctx.registry.add(restored.host, this.#ip, restored.principal);
        restored.host.start().detach();
        return;
      }
      host = restored.host;
      resumeToken = restored.resumeToken;
      this.#ctx.registry.add(host, this.#ip, restored.principal);
      host.start();
    }
    const audio = this.#ctx.audioOf(host);
    this.#logger = host.logger.child({ remote: this.#ip });
    this.#bind(host, audio);
    this.#send({
      type: 'session.resumed',
      sessionId: host.id,
      state: host.state,
      voice: host.voice,
      resumeToken,
      historyLength: host.history.length,
      ...(host.stage === undefined ? {} : { stage: host.stage }),
    });
    this.#ctx.connected(this, { sessionId: host.id, remoteAddress: this.#ip, resumed: true, metadata: undefined });
  }

  #bind(host: SessionHost, audio: NegotiatedAudio): void {
    this.#host = host;
    // A session that ends by itself (idle, a fatal error) closes its connection, normally.
    host.attach(
      (message) => this.#send(message),
      // (Normally; a session resumed on another server closes with its error's code, 4409.)
      (reason) => (reason === 'session_moved' ? this.#close(closeCodeFor('session_moved'), 'session_moved') : this.#close(CLOSE_NORMAL, `session closed: ${reason}`)),
    );
    if (audio.transport === 'websocket') {
      const { maxFrameMs, inboundRate } = this.#ctx.options.audioInput;
      const transport = new WebSocketAudioTransport(this.#socket, {
        sampleRate: audio.sampleRate,
        logger: this.#logger,
        maxFrameMs,
        ...(inboundRate === undefined ? {} : { inboundRate }),
      });
      // The client kept sending audio faster than real time: refused, and its session ends.
      transport.onClosed((info) => {
        if (info.error?.code !== 'audio_rate_exceeded' || this.#wsAudio !== transport) return;
        this.#error('audio_rate_exceeded', info.error.message, true);
        host.close('audio_rate_exceeded');
      });
      this.#wsAudio = transport;
      host.setTransport(transport);
    } else {
      // In a transport worker thread by default (webrtc-pool.ts); the session sees the same AudioTransport.
      const transport = this.#ctx.options.webrtc.create({
        iceServers: this.#ctx.options.iceServers,
        logger: this.#logger,
        inputSampleRate: WEBRTC_PCM_RATES.input,
        outputSampleRate: WEBRTC_PCM_RATES.output,
        ...(this.#ctx.options.webrtcHostAddresses === undefined ? {} : { hostAddresses: this.#ctx.options.webrtcHostAddresses }),
      });
      transport.onIceCandidate((candidate) => this.#send({ type: 'webrtc.ice', candidate: candidate?.candidate ?? null, sdpMid: candidate?.sdpMid ?? null, sdpMLineIndex: candidate?.sdpMLineIndex ?? null }));
      // Its inbound losses and concealment go into /metrics until it closes.
      const untrack = this.#ctx.metrics?.trackWebRtc(transport);
      if (untrack !== undefined) this.#untrackWebRtc.push(untrack);
      transport.onClosed((info) => {
        untrack?.();
        // Its worker died: this session cannot get its audio back, so it ends (other sessions go on).
        if (info.error?.code !== 'transport_failed' || this.#webrtc !== transport) return;
        this.#error('transport_failed', info.error.message, true);
        host.close('transport_failed');
      });
      // WebRTC audio is activity too: a WebRTC client may send no message for minutes.
      transport.onAudio(() => {
        this.#lastActivity = performance.now();
      });
      this.#webrtc = transport;
      host.setTransport(transport);
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const untrack of this.#untrackWebRtc.splice(0)) untrack();
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const host = this.#host;
    this.#host = undefined;
    this.#wsAudio = undefined;
    this.#webrtc = undefined;
    if (host !== undefined && !host.closed) host.detach();
    this.#ctx.disconnected(this, { sessionId: host?.id ?? '', connectedMs: Date.now() - this.#openedAt, code, reason });
  }
}
