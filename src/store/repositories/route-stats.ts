import type { Executor } from "../database.js";

export interface RouteDeliveryStats {
  readonly routeId: string;
  /** Submitted attempts that got a final receipt in the window. */
  readonly finished: number;
  readonly delivered: number;
  /** Median submit → delivery time of the delivered ones, when there are any (estimated: see `medianLatency`). */
  readonly p50LatencyMs: number | null;
}

/** Upper bounds (ms, exclusive) of the delivery latency buckets the rollups count in; the last one is "any". */
export const LATENCY_BOUNDS_MS = [500, 1_000, 2_000, 3_000, 5_000, 8_000, 13_000, 20_000, 30_000, 60_000, 120_000, 300_000, 2_147_483_647] as const;
/** `latency_le_ms` of attempts that finished without delivery. */
export const UNDELIVERED = -1;
/** Rows one count is spread over (by attempt id). */
const SHARDS = 8;

/** The rollup row an attempt that finished at `at` is counted in: its minute, its bucket, its shard. */
export function routeOutcomeKey(attemptId: string, at: Date, latencyMs: number | undefined): { minute: Date; latency_le_ms: number; shard: number } {
  let hash = 0;
  for (let i = 0; i < attemptId.length; i++) hash = (hash * 31 + attemptId.charCodeAt(i)) >>> 0;
  return {
    minute: new Date(Math.floor(at.getTime() / 60_000) * 60_000),
    latency_le_ms: latencyMs === undefined ? UNDELIVERED : LATENCY_BOUNDS_MS.find((bound) => latencyMs < bound) ?? LATENCY_BOUNDS_MS.at(-1)!,
    shard: hash % SHARDS,
  };
}

/**
 * Per route, the submitted attempts that reached a final status in the whole
 * minutes since `since`, read from the per-minute rollups `markFinished`
 * keeps (rows: routes × minutes × buckets × shards, whatever the traffic).
 * Attempts still waiting for a receipt do not count either way (email has none).
 */
export async function routeDeliveryStats(db: Executor, since: Date): Promise<RouteDeliveryStats[]> {
  const rows = await db
    .selectFrom("route_outcomes")
    .select((eb) => ["route_id", "latency_le_ms", eb.fn.sum<number>("attempts").as("attempts"), eb.fn.sum<number>("latency_ms_sum").as("latency_ms_sum")])
    .where("minute", ">=", since)
    .groupBy(["route_id", "latency_le_ms"])
    .execute();
  const byRoute = new Map<string, Bucket[]>();
  for (const r of rows) {
    const buckets = byRoute.get(r.route_id) ?? [];
    buckets.push({ le: r.latency_le_ms, attempts: Number(r.attempts), latencySum: Number(r.latency_ms_sum) });
    byRoute.set(r.route_id, buckets);
  }
  return [...byRoute].map(([routeId, buckets]) => {
    const delivered = buckets.filter((b) => b.le !== UNDELIVERED);
    return {
      routeId,
      finished: buckets.reduce((n, b) => n + b.attempts, 0),
      delivered: delivered.reduce((n, b) => n + b.attempts, 0),
      p50LatencyMs: medianLatency(delivered),
    };
  });
}

interface Bucket {
  readonly le: number;
  readonly attempts: number;
  readonly latencySum: number;
}

/**
 * The median latency, estimated as the mean latency of the bucket the median
 * falls in: always within that bucket's bounds, and exact when the latencies
 * there are alike. Null without deliveries.
 */
function medianLatency(delivered: readonly Bucket[]): number | null {
  const total = delivered.reduce((n, b) => n + b.attempts, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const bucket of [...delivered].sort((a, b) => a.le - b.le)) {
    seen += bucket.attempts;
    if (seen >= total / 2) return Math.round(bucket.latencySum / bucket.attempts);
  }
  return null;
}
