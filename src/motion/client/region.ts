/**
 * `region: 'auto'`: which region serves an app, as the SDKs find out. They ask a bootstrap endpoint:
 *
 *   POST https://global.spatialwalk.top/bootstrap
 *   {"app_id": "...", "sdk_version": "...", "region": "auto", "platform": "node"}
 *   → {"region": {"current": "ap-northeast", ...}, ...}
 *
 * The answer is cached per app id and bootstrap URL (5 minutes by default), so a server starting
 * many sessions asks once; concurrent sessions share one request in flight. Any failure (network,
 * timeout, a non-200, a body that is not JSON or names no usable region) falls back to `us-west`,
 * logged at warn, and is not cached: the next session asks again.
 */
import { createRequire } from 'node:module';
import { silentLogger, type Logger } from '../../observability/logger.js';
import { DEFAULT_REGION } from './endpoints.js';

export const DEFAULT_BOOTSTRAP_URL = 'https://global.spatialwalk.top/bootstrap';
/** Default of `regionBootstrapTimeoutMs`. */
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 5000;
/** Default of `regionCacheMs`. */
export const DEFAULT_REGION_CACHE_MS = 5 * 60 * 1000;
/** The region used when the bootstrap endpoint cannot say. */
export const FALLBACK_REGION = DEFAULT_REGION;

export interface RegionDiscoveryOptions {
  readonly appId: string;
  /** Default `https://global.spatialwalk.top/bootstrap`. */
  readonly bootstrapUrl?: string;
  /** Default 5000 ms. */
  readonly timeoutMs?: number;
  /** How long an answer is reused for the same app id and bootstrap URL. Default 300000 ms. */
  readonly cacheMs?: number;
  readonly fetch?: typeof fetch;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
}

interface CachedRegion {
  readonly region: string;
  readonly expiresAt: number;
}

const cache = new Map<string, CachedRegion>();
const inFlight = new Map<string, Promise<string>>();

function sdkVersion(): string {
  try {
    return (createRequire(import.meta.url)('voxstate/package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function cacheKey(bootstrapUrl: string, appId: string): string {
  return JSON.stringify([bootstrapUrl, appId]);
}

/** Reads `region.current` from a bootstrap answer; undefined when it is not a region name. */
function regionOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const region = (body as { region?: unknown }).region;
  if (typeof region !== 'object' || region === null) return undefined;
  const current = (region as { current?: unknown }).current;
  return typeof current === 'string' && /^[a-z0-9-]+$/.test(current) && current !== 'auto' ? current : undefined;
}

async function ask(options: RegionDiscoveryOptions, bootstrapUrl: string): Promise<string> {
  const doFetch = options.fetch ?? fetch;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_BOOTSTRAP_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const response = await doFetch(bootstrapUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ app_id: options.appId, sdk_version: sdkVersion(), region: 'auto', platform: 'node' }),
    signal,
  });
  // The body is read under the same signal, so a server that sends headers and then stalls times out too.
  const text = await response.text();
  if (response.status !== 200) throw new Error(`bootstrap answered HTTP ${response.status}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('bootstrap answer is not JSON');
  }
  const region = regionOf(body);
  if (region === undefined) throw new Error('bootstrap answer has no usable region.current');
  return region;
}

/** The region that serves `appId` (see the file comment). Never rejects. */
export async function discoverRegion(options: RegionDiscoveryOptions): Promise<string> {
  const bootstrapUrl = options.bootstrapUrl ?? DEFAULT_BOOTSTRAP_URL;
  const key = cacheKey(bootstrapUrl, options.appId);
  const cached = cache.get(key);
  if (cached !== undefined && cached.expiresAt > Date.now()) return cached.region;
  if (cached !== undefined) cache.delete(key);
  const pending = inFlight.get(key);
  if (pending !== undefined) return pending;
  const log = (options.logger ?? silentLogger()).child({ component: 'motion-region' });
  const request = ask(options, bootstrapUrl).then(
    (region) => {
      cache.set(key, { region, expiresAt: Date.now() + (options.cacheMs ?? DEFAULT_REGION_CACHE_MS) });
      log.debug({ region }, 'Motion Server region discovered');
      return region;
    },
    (error: unknown) => {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      log.warn(
        { err: error instanceof Error ? error.message : String(error), bootstrapUrl, fallback: FALLBACK_REGION },
        timedOut ? 'region bootstrap timed out; using the fallback region' : 'region bootstrap failed; using the fallback region',
      );
      return FALLBACK_REGION;
    },
  );
  inFlight.set(key, request);
  try {
    return await request;
  } finally {
    inFlight.delete(key);
  }
}
