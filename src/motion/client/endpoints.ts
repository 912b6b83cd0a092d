import { ConfigError } from '../../errors.js';

export const DEFAULT_REGION = 'us-west';
/** The region name that asks the bootstrap endpoint which region serves the app (see region.ts). */
export const AUTO_REGION = 'auto';

export interface EndpointOptions {
  /**
   * `us-west` (default), `ap-northeast`, a `cn-*` region (served from spatialwalk.top), or `auto`:
   * ask the bootstrap endpoint (`regionBootstrapUrl`) once per app, cached for 5 minutes.
   */
  readonly region?: string;
  /** Replaces the console URL, e.g. `http://127.0.0.1:7700/v1/console`. */
  readonly consoleEndpointUrl?: string;
  /**
   * Replaces the ingress URL, e.g. `ws://127.0.0.1:7700/v2/driveningress`. `http(s)://` is taken as
   * `ws(s)://`, as the SDKs do; a query string is kept.
   */
  readonly ingressEndpointUrl?: string;
}

export interface MotionEndpoints {
  /** Base of the HTTP console API, normalized; `/session-tokens` is appended with `sessionTokensUrl`. */
  readonly consoleUrl: string;
  /** Base of the WebSocket ingress, normalized (`ws:`/`wss:`); see `websocketUrl`. */
  readonly ingressUrl: string;
}

function domainOf(region: string): string {
  return region.startsWith('cn-') ? 'spatialwalk.top' : 'spatius.ai';
}

/** `/v1/console//` → `/v1/console`: a trailing slash would put an empty segment before the next one. */
function trimTrailingSlashes(url: URL): URL {
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url;
}

function parse(field: string, text: string): URL {
  try {
    return new URL(text);
  } catch (error) {
    throw new ConfigError(field, 'not a URL', { cause: error });
  }
}

/** `base` + `/segment` on the path, keeping the query string (built with the URL API, never by concatenation). */
function appendPath(base: string, segment: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${segment}`;
  return url;
}

/** `POST` target of the token exchange: `{console}/session-tokens`. */
export function sessionTokensUrl(consoleUrl: string): URL {
  return appendPath(consoleUrl, 'session-tokens');
}

/** The WebSocket URL: `{ingress}/websocket?<the ingress query>&id=<avatarId>`. */
export function websocketUrl(ingressUrl: string, avatarId: string): URL {
  const url = appendPath(ingressUrl, 'websocket');
  url.searchParams.set('id', avatarId);
  return url;
}

/**
 * Resolves the console and ingress URLs from a region, honouring explicit overrides. `region: 'auto'`
 * must be resolved to a region first (`discoverRegion`); the MotionClient does that when it connects.
 */
export function resolveEndpoints(options: EndpointOptions = {}): MotionEndpoints {
  const region = options.region ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]+$/.test(region)) throw new ConfigError('region', `not a region name: ${JSON.stringify(region)}`);
  const needsRegion = options.consoleEndpointUrl === undefined || options.ingressEndpointUrl === undefined;
  if (region === AUTO_REGION && needsRegion) {
    throw new ConfigError('region', "'auto' is resolved by discoverRegion() before the endpoints are built");
  }
  const domain = domainOf(region);
  const consoleBase = trimTrailingSlashes(parse('consoleEndpointUrl', options.consoleEndpointUrl ?? `https://console.${region}.${domain}/v1/console`));
  if (consoleBase.protocol !== 'http:' && consoleBase.protocol !== 'https:') {
    throw new ConfigError('consoleEndpointUrl', `expected http: or https: URL, got ${consoleBase.protocol}`);
  }
  const ingress = trimTrailingSlashes(parse('ingressEndpointUrl', options.ingressEndpointUrl ?? `wss://api.${region}.${domain}/v2/driveningress`));
  // The SDKs take an http(s) ingress URL and speak WebSocket to it; so do we.
  if (ingress.protocol === 'http:') ingress.protocol = 'ws:';
  else if (ingress.protocol === 'https:') ingress.protocol = 'wss:';
  if (ingress.protocol !== 'ws:' && ingress.protocol !== 'wss:') {
    throw new ConfigError('ingressEndpointUrl', `expected ws:, wss:, http: or https: URL, got ${ingress.protocol}`);
  }
  return { consoleUrl: withoutRootSlash(consoleBase), ingressUrl: withoutRootSlash(ingress) };
}

/** `http://h:1/` → `http://h:1` (the URL API always writes a root path), other URLs as they are. */
function withoutRootSlash(url: URL): string {
  const text = url.toString();
  return url.pathname === '/' && url.search === '' && url.hash === '' ? text.slice(0, -1) : text;
}
