import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/**
 * Random bytes at or above this are thrown away: 248 is the largest multiple of 62 below 256, so
 * `byte % 62` is uniform over what is kept (no letter is likelier than another).
 */
const UNBIASED_LIMIT = 256 - (256 % ALPHABET.length);
const SUFFIX_LENGTH = 12;

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** `SUFFIX_LENGTH` characters drawn uniformly from ALPHABET (rejection sampling). */
function randomSuffix(): string {
  let suffix = '';
  while (suffix.length < SUFFIX_LENGTH) {
    // 16 bytes give 12 usable ones with probability > 99.9 %; the loop covers the rest.
    for (const byte of randomBytes(16)) {
      if (byte >= UNBIASED_LIMIT) continue;
      suffix += ALPHABET[byte % ALPHABET.length];
      if (suffix.length === SUFFIX_LENGTH) break;
    }
  }
  return suffix;
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
  return `${stamp}_${randomSuffix()}`;
}

/**
 * The req_id form: a UTC stamp and 12 characters. The SDKs draw their suffix from base64url, so `-`
 * and `_` are accepted too; ours uses letters and digits only.
 */
export const REQ_ID_PATTERN = /^\d{14}_[A-Za-z0-9_-]{12}$/;
