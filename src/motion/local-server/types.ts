/** What the local Motion Server is started with and what it reports. */
import type { Logger } from '../../observability/logger.js';
import type { MotionFaults } from './faults.js';

export interface LocalMotionServerOptions {
  /** Default 0 (any free port). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly apiKey: string;
  readonly appId: string;
  /** Avatar ids accepted; omit to accept any. */
  readonly avatars?: readonly string[];
  /** Keyframes per animation message (default 1: one envelope per 40 ms, the lowest latency). */
  readonly keyframesPerMessage?: number;
  /** Close a session that received nothing for this long with 4002. Default 300000 ms. */
  readonly idleTimeoutMs?: number;
  /** How many times the `end=true` drained signal is sent in egress mode (it can repeat). Default 2. */
  readonly egressEndRepeats?: number;
  /** Session tokens kept at most; past it the oldest is forgotten (400 token invalid). Default 100000. */
  readonly maxTokens?: number;
  /**
   * Ended or interrupted req_ids each session remembers, so that a late chunk of one is refused
   * (ended) or ignored (interrupted) rather than animated again. Past it the oldest are forgotten;
   * all of them go when the session ends. Default 1024.
   */
  readonly maxFinishedRequests?: number;
  readonly faults?: MotionFaults;
  readonly logger?: Logger;
}

export interface LocalMotionServerInfo {
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  /** Pass as `consoleEndpointUrl`. */
  readonly consoleEndpointUrl: string;
  /** Pass as `ingressEndpointUrl`. */
  readonly ingressEndpointUrl: string;
}

export interface LocalMotionServerStats {
  tokensIssued: number;
  connections: number;
  refusedUpgrades: number;
  animationMessages: number;
  interrupts: number;
  protocolErrors: number;
}

/** What the server holds in memory right now (for leak checks). */
export interface LocalMotionServerRetained {
  /** Live session tokens. */
  readonly tokens: number;
  /** Requests (req_ids) still streaming, over every session. */
  readonly openRequests: number;
  /** Ended or interrupted req_ids remembered, over every session. */
  readonly finishedRequests: number;
}
