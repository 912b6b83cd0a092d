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
