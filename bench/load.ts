import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";

/** What one load run measured. */
export interface LoadResult {
  readonly name: string;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/**
 * Runs `call` as fast as `connections × inFlight` concurrent callers allow for
 * `seconds` (after a warm-up of a tenth of that), and reports the rate and the
 * latency percentiles. Bounded in time: every caller stops at the deadline.
 */
export async function saturate(name: string, seconds: number, concurrency: number, call: (worker: number) => Promise<unknown>): Promise<LoadResult> {
  const warmUntil = Date.now() + (seconds * 1000) / 10;
  const end = warmUntil + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (Date.now() < end) {
        const started = performance.now();
        const ok = await call(worker).then(
          () => true,
          () => false,
        );
        if (Date.now() < warmUntil) continue;
        if (ok) latencies.push(performance.now() - started);
        else errors += 1;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { name, perSecond: Math.round(latencies.length / seconds), p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), errors };
}

/** `connections` gRPC clients of `service` on their own HTTP/2 connections to `port`; callers pick one by index. */
export function clients<S extends DescService>(service: S, port: number, connections: number): Array<Client<S>> {
  return Array.from({ length: connections }, () => createClient(service, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` })));
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
