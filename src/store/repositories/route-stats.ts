import type { Executor } from "../database.js";

/** Receipts of one route (or of one route to one country) in the window. */
export interface DeliveryStats {
  /** Submitted attempts that got a final receipt in the window. */
  readonly finished: number;
  readonly delivered: number;
  /** Median submit → delivery time of the delivered ones, when there are any (estimated: see `medianLatency`). */
  readonly p50LatencyMs: number | null;
  /** 95th percentile of the same, rounded up to its bucket's bound (see `p95Latency`). */
  readonly p95LatencyMs: number | null;
}

export interface RouteDeliveryStats extends DeliveryStats {
  readonly routeId: string;
  /** The same per destination country (ISO 3166-1 alpha-2); destinations without one are only in the route's figures. */
  readonly countries: ReadonlyMap<string, DeliveryStats>;
}

/** Upper bounds (ms, exclusive) of the delivery latency buckets the rollups count in; the last one is "any". */
export const LATENCY_BOUNDS_MS = [500, 1_000, 2_000, 3_000, 5_000, 8_000, 13_000, 20_000, 30_000, 60_000, 120_000, 300_000, 2_147_483_647] as const;
/** `latency_le_ms` of attempts that finished without delivery. */
export const UNDELIVERED = -1;
/** Rows one count is spread over (by attempt id). */
const SHARDS = 8;

/** The minute and shard an attempt's count goes to in a per-minute rollup (route outcomes, conversion counts). */
export function rollupSlot(attemptId: string, at: Date): { minute: Date; shard: number } {
  let hash = 0;
  for (let i = 0; i < attemptId.length; i++) hash = (hash * 31 + attemptId.charCodeAt(i)) >>> 0;
  return { minute: new Date(Math.floor(at.getTime() / 60_000) * 60_000), shard: hash % SHARDS };
}

/** The rollup row an attempt that finished at `at` is counted in: its minute, its bucket, its shard. */
export function routeOutcomeKey(attemptId: string, at: Date, latencyMs: number | undefined): { minute: Date; latency_le_ms: number; shard: number } {
  return {
    latency_le_ms: latencyMs === undefined ? UNDELIVERED : LATENCY_BOUNDS_MS.find((bound) => latencyMs < bound) ?? LATENCY_BOUNDS_MS.at(-1)!,
    ...rollupSlot(attemptId, at),
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
    .select((eb) => ["route_id", "country", "latency_le_ms", eb.fn.sum<number>("attempts").as("attempts"), eb.fn.sum<number>("latency_ms_sum").as("latency_ms_sum")])
    .where("minute", ">=", since)
    .groupBy(["route_id", "country", "latency_le_ms"])
    .execute();
  const byRoute = new Map<string, Map<string, Bucket[]>>();
  for (const r of rows) {
    const countries = byRoute.get(r.route_id) ?? new Map<string, Bucket[]>();
    const buckets = countries.get(r.country) ?? [];
    buckets.push({ le: r.latency_le_ms, attempts: Number(r.attempts), latencySum: Number(r.latency_ms_sum) });
    countries.set(r.country, buckets);
    byRoute.set(r.route_id, countries);
  }
  return [...byRoute].map(([routeId, countries]) => ({
    routeId,
    ...deliveryStats(mergeBuckets([...countries.values()].flat())),
    countries: new Map([...countries].filter(([country]) => country !== "").map(([country, buckets]) => [country, deliveryStats(buckets)])),
  }));
}

function deliveryStats(buckets: readonly Bucket[]): DeliveryStats {
  const delivered = buckets.filter((b) => b.le !== UNDELIVERED);
  return {
    finished: buckets.reduce((n, b) => n + b.attempts, 0),
    delivered: delivered.reduce((n, b) => n + b.attempts, 0),
    p50LatencyMs: medianLatency(delivered),
    p95LatencyMs: p95Latency(delivered),
  };
}

/** One bucket per bound: the countries' rows of a route added up. */
function mergeBuckets(buckets: readonly Bucket[]): Bucket[] {
  const merged = new Map<number, Bucket>();
  for (const b of buckets) {
    const m = merged.get(b.le);
    merged.set(b.le, m === undefined ? b : { le: b.le, attempts: m.attempts + b.attempts, latencySum: m.latencySum + b.latencySum });
  }
  return [...merged.values()];
}

interface Bucket {
  readonly le: number;
  readonly attempts: number;
  readonly latencySum: number;
}

/** The latency bucket the delivery at `share` (0–1) of the way through, in latency order, falls in; none without deliveries. */
function bucketAt(delivered: readonly Bucket[], share: number): Bucket | undefined {
  const total = delivered.reduce((n, b) => n + b.attempts, 0);
  let seen = 0;
  for (const bucket of [...delivered].sort((a, b) => a.le - b.le)) {
    seen += bucket.attempts;
    if (total > 0 && seen >= total * share) return bucket;
  }
  return undefined;
}

const meanOf = (bucket: Bucket) => Math.round(bucket.latencySum / bucket.attempts);

/**
 * The median latency, estimated as the mean latency of the bucket the median
 * falls in: always within that bucket's bounds, and exact when the latencies
 * there are alike. Null without deliveries.
 */
function medianLatency(delivered: readonly Bucket[]): number | null {
  const bucket = bucketAt(delivered, 0.5);
  return bucket === undefined ? null : meanOf(bucket);
}

/**
 * The 95th percentile latency, as the upper bound of the bucket it falls in: never under the true value (a
 * deadline set from it waits for 95 % of deliveries at least), at most one bucket over. In the last, unbounded
 * bucket the bucket's mean latency is the best there is. Null without deliveries.
 */
function p95Latency(delivered: readonly Bucket[]): number | null {
  const bucket = bucketAt(delivered, 0.95);
  if (bucket === undefined) return null;
  return bucket.le === LATENCY_BOUNDS_MS.at(-1) ? meanOf(bucket) : bucket.le;
}
