/** HTTP pieces shared by the token endpoint and the WebSocket upgrade: paths and error bodies. */
import { timingSafeEqual } from 'node:crypto';

export const CONSOLE_PATH = '/v1/console';
export const INGRESS_PATH = '/v2/driveningress';

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function secretEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function errorBody(status: number, code: string, title: string, detail: string): string {
  return JSON.stringify({ errors: [{ status: String(status), code, title, detail }] });
}

/**
 * The bodies of the documented upgrade refusals, as a hosted ingress words them: clients tell
 * "token invalid" from other 400s, and "app" from "avatar" 404s, by what the body says.
 */
export const REFUSAL = {
  tokenInvalid: errorBody(400, 'token_invalid', 'Bad Request', 'session token invalid'),
  tokenExpired: errorBody(401, 'token_expired', 'Unauthorized', 'session token expired'),
  billingRequired: errorBody(402, 'billing_required', 'Payment Required', 'billing required'),
  appNotFound: errorBody(404, 'app_not_found', 'Not Found', 'app unrecognized'),
  avatarNotFound: errorBody(404, 'avatar_not_found', 'Not Found', 'avatar not found'),
} as const;

/** The body a fault-injected refusal carries: the documented one for its status, else a generic one. */
export function faultRefusalBody(status: number): string {
  switch (status) {
    case 400:
      return REFUSAL.tokenInvalid;
    case 401:
      return REFUSAL.tokenExpired;
    case 402:
      return REFUSAL.billingRequired;
    case 404:
      return REFUSAL.appNotFound;
    default:
      return errorBody(status, 'fault_injected', STATUS_TEXT[status] ?? 'Error', 'fault injection');
  }
}
