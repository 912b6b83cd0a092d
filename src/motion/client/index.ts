export { MotionClient, type MotionAnimation, type MotionClientEvents, type MotionClientOptions, type MotionClientStats, type MotionConfirm } from './motion-client.js';
export { resolveEndpoints, DEFAULT_REGION, type EndpointOptions, type MotionEndpoints } from './endpoints.js';
export { fetchSessionToken, type SessionTokenRequest } from './token.js';
export { newReqId, REQ_ID_PATTERN } from './req-id.js';
