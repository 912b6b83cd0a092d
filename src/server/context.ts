/** What a ClientConnection needs from its server (kept narrow so connections stay testable). */
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { IceServer, NegotiatedAudio } from '../protocol/messages.js';
import type { WebRtcTransportFactory } from '../transport/webrtc-pool.js';
import type { ClientConnection } from './connection.js';
import type { ConnectionInfo, DisconnectTiming } from './hooks.js';
import type { SessionRegistry } from './registry.js';
import type { SessionHost } from './session-host.js';

export interface ConnectionOptions {
  readonly maxMessageBytes: number;
  readonly maxMessagesPerSecond: number;
  readonly iceServers: readonly IceServer[];
  readonly webrtcHostAddresses: readonly string[] | undefined;
  /** Makes each WebRTC session's transport (in a worker thread by default). */
  readonly webrtc: WebRtcTransportFactory;
}

export interface NewHost {
  readonly sessionId: string;
  readonly resumeToken: string;
  readonly audio: NegotiatedAudio;
  readonly language?: string;
  readonly voice?: string;
  readonly history?: readonly import('../providers/types.js').ChatMessage[];
  /** The playbook to run: a name of `playbooks`, or '' for the server's `playbook`; and the stage to resume in. */
  readonly playbook?: { readonly name: string; readonly stage?: string; readonly data?: Readonly<Record<string, unknown>> };
}

export interface ServerContext {
  readonly logger: Logger;
  readonly options: ConnectionOptions;
  readonly registry: SessionRegistry;
  /** The principal (an id, or undefined for anonymous access) or false when refused. */
  authenticate(token: string | undefined): Promise<string | undefined | false>;
  createHost(spec: NewHost): SessionHost;
  /** Whether `session.hello.options.playbook` names a playbook this server runs. */
  hasPlaybook(name: string): boolean;
  audioOf(host: SessionHost): NegotiatedAudio;
  /**
   * Rebuilds a session that is not live here from the session store (a restart, another server):
   * `refused` when the token does not match, `missing` when there is no such record.
   */
  restore(sessionId: string, resumeToken: string): Promise<SessionHost | 'refused' | 'missing'>;
  connected(connection: ClientConnection, info: ConnectionInfo): void;
  disconnected(connection: ClientConnection, timing: DisconnectTiming): void;
  reportError(sessionId: string | undefined, code: ErrorCode, message: string): void;
}
