import type { SpeechClient } from '@google-cloud/speech';
import { ProviderError } from '../../errors.js';
import { redactSecrets, toProviderError } from '../resilience.js';
import { abortedError, type ProviderKind } from '../local/streams.js';

type SpeechClientOptions = NonNullable<ConstructorParameters<typeof SpeechClient>[0]>;

/**
 * How to reach Google Cloud. Credentials come the usual Google way: `GOOGLE_APPLICATION_CREDENTIALS`
 * (application default credentials) unless `keyFilename` or `credentials` are given.
 */
export interface GoogleClientOptions {
  /** Path of a service-account JSON key. */
  readonly keyFilename?: string;
  /** The parsed contents of a service-account key (`client_email`, `private_key`, ...). */
  readonly credentials?: SpeechClientOptions['credentials'];
  readonly projectId?: string;
  /** Host of the API (tests: '127.0.0.1'). */
  readonly apiEndpoint?: string;
  readonly port?: number;
  /**
   * gRPC channel credentials; `grpc.credentials.createInsecure()` for a loopback server. When set,
   * no Google credentials are looked up at all (not even the metadata server).
   */
  readonly sslCreds?: SpeechClientOptions['sslCreds'];
  /** Default `googleapis.com`. */
  readonly universeDomain?: string;
}

export function clientOptions(options: GoogleClientOptions): SpeechClientOptions {
  return {
    ...(options.keyFilename === undefined ? {} : { keyFilename: options.keyFilename }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    ...(options.projectId === undefined ? {} : { projectId: options.projectId }),
    ...(options.apiEndpoint === undefined ? {} : { apiEndpoint: options.apiEndpoint }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.sslCreds === undefined ? {} : { sslCreds: options.sslCreds }),
    // Naming the universe up front spares google-auth a credentials lookup just to learn it.
    ...(options.universeDomain === undefined && options.sslCreds === undefined ? {} : { universeDomain: options.universeDomain ?? 'googleapis.com' }),
  };
}

/** gRPC status codes (google.rpc.Code). */
export const GrpcStatus = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Maps an error from google-gax / grpc-js / google-auth-library to a ProviderError. */
export function mapGoogleError(error: unknown, kind: ProviderKind, signal?: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal?.aborted) return abortedError(kind, error);
  const code = (error as { code?: unknown } | null)?.code;
  const message = redactSecrets(error instanceof Error ? error.message : String(error));
  const make = (c: ConstructorParameters<typeof ProviderError>[0], retryable = false): ProviderError =>
    new ProviderError(c, kind, `Google Cloud: ${message}`, { cause: error, retryable });
  if (typeof code === 'number') {
    switch (code) {
      case GrpcStatus.CANCELLED:
        return make('provider_unavailable', true);
      case GrpcStatus.DEADLINE_EXCEEDED:
        return make('provider_timeout', true);
      case GrpcStatus.PERMISSION_DENIED:
      case GrpcStatus.UNAUTHENTICATED:
        return make('provider_auth');
      case GrpcStatus.RESOURCE_EXHAUSTED:
        return make('provider_rate_limited', true);
      case GrpcStatus.UNAVAILABLE:
        return make('provider_unavailable', true);
      case GrpcStatus.INTERNAL:
        // grpc-js reports undecodable responses as INTERNAL.
        if (/pars|decod|deserializ/i.test(message)) return make('provider_bad_response');
        return make('provider_failed', true);
      case GrpcStatus.ABORTED:
        return make('provider_failed', true);
      default:
        return make('provider_failed');
    }
  }
  if (/default credentials|could not load|invalid_grant|private key|client_email|unauthorized/i.test(message))
    return make('provider_auth');
  return toProviderError(error, kind);
}
