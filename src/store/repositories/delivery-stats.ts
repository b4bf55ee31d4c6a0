import { sql } from "kysely";
import type { Executor } from "../database.js";

export type StatsGroup = "channel" | "route" | "country" | "step" | "prefix";

/** The columns each grouping adds, in output order (route implies its channel). */
const GROUP_COLUMNS: Record<StatsGroup, readonly string[]> = {
  channel: ["channel"],
  route: ["channel", "route_id"],
  country: ["country"],
  step: ["step_index"],
  prefix: ["prefix"],
};

export interface StatsRow {
  /** With an interval: the bucket's number from `from` (0, 1, …); otherwise null. */
  readonly bucket: number | null;
  readonly channel: string | null;
  readonly route_id: string | null;
  readonly country: string | null;
  readonly step_index: number | null;
  readonly prefix: string | null;
  readonly currency: string;
  readonly attempts: number;
  readonly submitted: number;
  readonly delivered: number;
  readonly p50_ms: number | null;
  readonly p95_ms: number | null;
  readonly approved: number;
  readonly escalated: number;
  readonly cost_micros: number;
}

/**
 * One caller's attempts queued in [from, to), counted per group (and per
 * currency, so prices in different currencies are never added up): submitted,
 * delivered, receipt latency percentiles, approvals with their codes,
 * escalations after them, and the price of the submitted ones. The country is
 * the destination phone number's, as planned; the step is the attempt's
 * position in its plan (0: the first message, so step 0 counts verifications). With an interval, each group is
 * also split into buckets of that length from `from`.
 */
export async function deliveryStats(
  db: Executor,
  callerId: string,
  window: { readonly from: Date; readonly to: Date; readonly intervalMs?: number | undefined },
  groupBy: readonly StatsGroup[],
): Promise<StatsRow[]> {
  const { from, to, intervalMs } = window;
  const columns = [...(intervalMs === undefined ? [] : ["bucket"]), ...new Set(groupBy.flatMap((g) => GROUP_COLUMNS[g]))];
  const selected = (name: string) => (columns.includes(name) ? sql.ref(name) : sql`null`);
  const keys = sql.join([...columns.map((c) => sql.ref(c)), sql.ref("currency")]);
  const { rows } = await sql<StatsRow>`
    with a as (
      select a.channel, a.route_id, a.step_index, coalesce(v.plan->0->>'country', '') as country,
        coalesce(v.plan->0->>'numberPrefix', '') as prefix, a.currency, a.status,
        floor(extract(epoch from a.created_at - ${from}::timestamptz) * 1000 / ${intervalMs ?? 1})::int as bucket,
        a.submitted_at, a.completed_at, a.price_micros,
        v.approved_attempt_id is not distinct from a.id as approved,
        exists (select 1 from attempts later where later.verification_id = a.verification_id and later.step_index > a.step_index) as escalated
      from attempts a join verifications v on v.id = a.verification_id
      where v.caller_id = ${callerId} and a.created_at >= ${from} and a.created_at < ${to}
    )
    select ${selected("bucket")} as bucket, ${selected("channel")} as channel, ${selected("route_id")} as route_id, ${selected("country")} as country, ${selected("step_index")} as step_index, ${selected("prefix")} as prefix, currency,
      count(*)::int as attempts,
      (count(*) filter (where submitted_at is not null))::int as submitted,
      (count(*) filter (where status = 'DELIVERED'))::int as delivered,
      percentile_cont(0.5) within group (order by extract(epoch from completed_at - submitted_at) * 1000)
        filter (where status = 'DELIVERED' and submitted_at is not null) as p50_ms,
      percentile_cont(0.95) within group (order by extract(epoch from completed_at - submitted_at) * 1000)
        filter (where status = 'DELIVERED' and submitted_at is not null) as p95_ms,
      (count(*) filter (where approved))::int as approved,
      (count(*) filter (where escalated))::int as escalated,
      coalesce(sum(price_micros) filter (where submitted_at is not null), 0)::bigint as cost_micros
    from a
    group by ${keys}
    order by ${keys}
  `.execute(db);
  return rows.map((r) => ({ ...r, p50_ms: r.p50_ms === null ? null : Number(r.p50_ms), p95_ms: r.p95_ms === null ? null : Number(r.p95_ms) }));
}
