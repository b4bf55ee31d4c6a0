/** Largest request message either port accepts, after decompression: far above any valid request (a few KiB). */
export const MAX_REQUEST_BYTES = 256 * 1024;

/**
 * How long a connection may take, or sit, before the port closes it, and how
 * many it holds: a client that opens sockets and says nothing (or half a
 * request) must not hold them, and the file descriptors behind them, for long.
 */
export interface ConnectionLimits {
  /** From accepting a connection until its request headers (HTTP/1) or its first bytes (any protocol) are in. */
  readonly headersTimeoutMs: number;
  /** HTTP/1: until the whole request (headers and body) is in. */
  readonly requestTimeoutMs: number;
  /** A connection with no call or stream open is closed after this long; keep above the WatchDelivery keep-alive. */
  readonly idleTimeoutMs: number;
  /** HTTP/1: how long a kept-alive connection waits for its next request. */
  readonly keepAliveTimeoutMs: number;
  /** Connections open at once per port; further ones are closed at once. */
  readonly maxConnections: number;
  /** Concurrent HTTP/2 streams (calls) per connection. */
  readonly maxStreamsPerConnection: number;
  /** gRPC port: a connection is asked to go away after this long (streams get a grace period of the same length to end). */
  readonly maxConnectionAgeMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 4_096,
  maxStreamsPerConnection: 1_024,
  maxConnectionAgeMs: 3_600_000,
};
