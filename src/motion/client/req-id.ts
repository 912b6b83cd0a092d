import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** A request id in the Server SDK format `YYYYMMDDHHMMSS_<12 random chars>` (UTC). */
export function newReqId(now: Date = new Date()): string {
  const stamp =
    pad(now.getUTCFullYear(), 4) +
    pad(now.getUTCMonth() + 1) +
    pad(now.getUTCDate()) +
    pad(now.getUTCHours()) +
    pad(now.getUTCMinutes()) +
    pad(now.getUTCSeconds());
  const bytes = randomBytes(12);
  let suffix = '';
  for (const byte of bytes) suffix += ALPHABET[byte % ALPHABET.length];
  return `${stamp}_${suffix}`;
}

export const REQ_ID_PATTERN = /^\d{14}_[A-Za-z0-9]{12}$/;
