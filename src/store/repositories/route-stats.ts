import { sql } from "kysely";
import type { Executor } from "../database.js";

export interface RouteDeliveryStats {
  readonly routeId: string;
  /** Submitted attempts that got a final receipt in the window. */
  readonly finished: number;
  readonly delivered: number;
  /** Median submit → delivery time of the delivered ones, when there are any. */
  readonly p50LatencyMs: number | null;
}

/**
 * Per route, the submitted attempts that reached a final status since `since`.
 * Attempts still waiting for a receipt do not count either way (email has none).
 */
export async function routeDeliveryStats(db: Executor, since: Date): Promise<RouteDeliveryStats[]> {
  const rows = await db
    .selectFrom("attempts")
    .select([
      "route_id",
      sql<number>`count(*)`.as("finished"),
      sql<number>`count(*) filter (where status = 'DELIVERED')`.as("delivered"),
    ])
    .where("completed_at", ">=", since)
    .where("submitted_at", "is not", null)
    .where("status", "in", ["DELIVERED", "UNDELIVERED", "EXPIRED", "FAILED", "REJECTED"])
    .groupBy("route_id")
    .execute();
  // Latency from the receipts' own times, as the delivery events recorded it.
  const latencies = await db
    .selectFrom("delivery_events")
    .select(["route_id", sql<number>`percentile_cont(0.5) within group (order by latency_ms)`.as("p50")])
    .where("kind", "=", "ATTEMPT_DELIVERED")
    .where("occurred_at", ">=", since)
    .groupBy("route_id")
    .execute();
  const p50 = new Map(latencies.map((l) => [l.route_id, Math.round(Number(l.p50))]));
  return rows.map((r) => ({ routeId: r.route_id, finished: Number(r.finished), delivered: Number(r.delivered), p50LatencyMs: p50.get(r.route_id) ?? null }));
}
