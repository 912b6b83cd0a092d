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
