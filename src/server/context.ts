/** What a ClientConnection needs from its server (kept narrow so connections stay testable). */
import type { ErrorCode } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { IceServer, NegotiatedAudio } from '../protocol/messages.js';
import type { InboundRateOptions } from '../transport/inbound-rate.js';
import type { WebRtcTransportFactory } from '../transport/webrtc-pool.js';
import type { ClientConnection } from './connection.js';
import type { ConnectionInfo, DisconnectTiming } from './hooks.js';
import type { SessionRegistry } from './registry.js';
import type { SessionHost } from './session-host.js';

export interface ConnectionOptions {
  readonly maxMessageBytes: number;
  readonly maxMessagesPerSecond: number;
  /** Binary audio limits (websocket audio): the longest frame, and the inbound rate (undefined: off). */
  readonly audioInput: { readonly maxFrameMs: number; readonly inboundRate: Required<InboundRateOptions> | undefined };
  /** A connection that sends nothing this long is closed with `connection_idle`; 0 = never. */
  readonly connectionIdleTimeoutMs: number;
  readonly iceServers: readonly IceServer[];
  readonly webrtcHostAddresses: readonly string[] | undefined;
  /** Makes each WebRTC session's transport (in a worker thread by default). */
  readonly webrtc: WebRtcTransportFactory;
  /** Reverse proxies whose X-Forwarded-For is believed (VoiceServerOptions.trustProxy); 0: the socket's address. */
  readonly trustProxyHops: number;
}

export interface NewHost {
  readonly sessionId: string;
  readonly resumeToken: string;
  /**
   * The token the client resumed with, which it still holds if the answer carrying `resumeToken` never
   * reached it: it keeps working until the client resumes with `resumeToken` (see SessionHost.resume).
   */
  readonly heldResumeToken?: string;
  readonly audio: NegotiatedAudio;
  readonly language?: string;
  readonly voice?: string;
  readonly history?: readonly import('../providers/types.js').ChatMessage[];
  /** The playbook to run: a name of `playbooks`, or '' for the server's `playbook`; and the stage to resume in. */
  readonly playbook?: { readonly name: string; readonly stage?: string; readonly data?: Readonly<Record<string, unknown>> };
  /** What `auth` returned (kept in the stored record so every node counts it in its limits). */
  readonly principal?: string;
  /** A session rebuilt from the store: the version this node claimed, and when it began. */
  readonly restored?: { readonly version: number; readonly createdAt: number };
}

/** A resume from the store: the rebuilt host with its new token, or why not (an error code for the client). */
export type RestoreResult =
  | { readonly ok: true; readonly host: SessionHost; readonly principal: string | undefined; readonly resumeToken: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface ServerContext {
  readonly logger: Logger;
  readonly options: ConnectionOptions;
  readonly registry: SessionRegistry;
  /** The server's metrics (undefined when `metrics: false`): WebRTC transports are counted into them. */
  readonly metrics?: Metrics;
  /** The principal (an id, or undefined for anonymous access) or false when refused. */
  authenticate(token: string | undefined): Promise<string | undefined | false>;
  createHost(spec: NewHost): SessionHost;
  /** Whether `session.hello.options.playbook` names a playbook this server runs. */
  hasPlaybook(name: string): boolean;
  audioOf(host: SessionHost): NegotiatedAudio;
  /**
   * Rebuilds a session that is not live here from the session store (a restart, another server):
   * checks the token against the record, asks `admit` whether the record's principal may have one
   * more session here, claims the record (this node holds it now; a new token replaces the old) and
   * builds the host (not started, not registered).
   */
  restore(
    sessionId: string,
    resumeToken: string,
    admit: (principal: string | undefined) => { readonly code: ErrorCode; readonly message: string } | undefined,
  ): Promise<RestoreResult>;
  /**
   * Before an in-process resume: whether this node still holds the session. False when the store
   * says another node took it over (resumed it there) — this node's copy has then been ended
   * quietly and the store's record decides the resume. True too when the store cannot be reached.
   */
  checkHeld(host: SessionHost): Promise<boolean>;
  connected(connection: ClientConnection, info: ConnectionInfo): void;
  disconnected(connection: ClientConnection, timing: DisconnectTiming): void;
  reportError(sessionId: string | undefined, code: ErrorCode, message: string): void;
}
