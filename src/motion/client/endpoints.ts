import { ConfigError } from '../../errors.js';

export const DEFAULT_REGION = 'us-west';

export interface EndpointOptions {
  /** `us-west` (default), `ap-northeast`, or a `cn-*` region (served from spatialwalk.top). */
  readonly region?: string;
  /** Replaces the console URL, e.g. `http://127.0.0.1:7700/v1/console`. */
  readonly consoleEndpointUrl?: string;
  /** Replaces the ingress URL, e.g. `ws://127.0.0.1:7700/v2/driveningress`. */
  readonly ingressEndpointUrl?: string;
}

export interface MotionEndpoints {
  /** Base of the HTTP console API; `/session-tokens` is appended. */
  readonly consoleUrl: string;
  /** Base of the WebSocket ingress; `/websocket?id=<avatarId>` is appended. */
  readonly ingressUrl: string;
}

function domainOf(region: string): string {
  return region.startsWith('cn-') ? 'spatialwalk.top' : 'spatius.ai';
}

function trimSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

/** Resolves the console and ingress URLs from a region, honouring explicit overrides. */
export function resolveEndpoints(options: EndpointOptions = {}): MotionEndpoints {
  const region = options.region ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]+$/.test(region)) throw new ConfigError('region', `not a region name: ${JSON.stringify(region)}`);
  const domain = domainOf(region);
  const consoleUrl = trimSlash(options.consoleEndpointUrl ?? `https://console.${region}.${domain}/v1/console`);
  const ingressUrl = trimSlash(options.ingressEndpointUrl ?? `wss://api.${region}.${domain}/v2/driveningress`);
  for (const [field, url, schemes] of [
    ['consoleEndpointUrl', consoleUrl, ['http:', 'https:']],
    ['ingressEndpointUrl', ingressUrl, ['ws:', 'wss:']],
  ] as const) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new ConfigError(field, 'not a URL', { cause: error });
    }
    if (!(schemes as readonly string[]).includes(parsed.protocol)) {
      throw new ConfigError(field, `expected ${schemes.join(' or ')} URL, got ${parsed.protocol}`);
    }
  }
  return { consoleUrl, ingressUrl };
}
