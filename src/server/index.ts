export { VoiceServer, type VoiceServerOptions, type VoiceServerEvents, type ServerAddress, type Authenticate, type AuthResult, type RouteHandler } from './voice-server.js';
export type { Hooks, TurnMetrics, ConnectionInfo, DisconnectTiming } from './hooks.js';
export { DEFAULT_SESSION_LIMITS, type SessionLimits } from './registry.js';
export { SessionHost } from './session-host.js';
export {
  createSessionToken,
  verifySessionToken,
  tokenAuth,
  parseDuration,
  SESSION_TOKEN_PREFIX,
  MIN_SECRET_BYTES,
  type SessionTokenClaims,
  type SessionTokenFailure,
  type SessionTokenVerdict,
  type VerifiedSessionToken,
  type TokenAuthOptions,
  type TokenSecret,
  type VerifyOptions,
} from './tokens.js';
export type { TrustProxy } from './http-access.js';
