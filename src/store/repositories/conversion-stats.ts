import { sql } from "kysely";
import type { Executor } from "../database.js";

/** Sends and approvals of one route to one country in one minute. */
export interface MinuteConversion {
  readonly minute: Date;
  readonly routeId: string;
  readonly country: string;
  readonly sent: number;
  readonly approved: number;
}

/**
 * Per minute, route and destination country: sends and approvals since `since` (whole minutes), from the
 * per-minute rollup, leaving out the number prefixes in `excluded` (ones flagged as SMS pumping: a flood of sends
 * nobody verifies says nothing about the route). Rows: minutes × routes × countries × prefixes × shards read,
 * minutes × routes × countries returned.
 */
export async function conversionByMinute(db: Executor, since: Date, excluded: readonly string[]): Promise<MinuteConversion[]> {
  const rows = await db
    .selectFrom("conversion_counts")
    .select((eb) => ["minute", "route_id", "country", eb.fn.sum<number>("sent").as("sent"), eb.fn.sum<number>("approved").as("approved")])
    .where("minute", ">=", since)
    .$if(excluded.length > 0, (q) => q.where("prefix", "not in", [...excluded]))
    .groupBy(["minute", "route_id", "country"])
    .execute();
  return rows.map((r) => ({ minute: new Date(r.minute), routeId: r.route_id, country: r.country, sent: Number(r.sent), approved: Number(r.approved) }));
}

/** A number prefix's sends and approvals in a window, beside those of its country's quiet prefixes. */
export interface PrefixConversion {
  readonly prefix: string;
  readonly country: string;
  readonly sent: number;
  readonly approved: number;
  /** Sends and approvals of the country's prefixes with fewer than `minSends` sends. */
  readonly quietSent: number;
  readonly quietApproved: number;
}

/**
 * The prefixes with at least `minSends` sends since `since` (over every route), each with its country's quiet
 * prefixes' totals. A prefix an operator released counts only sends after the release.
 */
export async function busyPrefixes(db: Executor, since: Date, minSends: number): Promise<PrefixConversion[]> {
  const { rows } = await sql<{ prefix: string; country: string; sent: string; approved: string; quiet_sent: string; quiet_approved: string }>`
    with p as (
      select c.prefix, c.country, sum(c.sent) as sent, sum(c.approved) as approved
      from conversion_counts c left join prefix_blocks b on b.prefix = c.prefix
      where c.minute >= ${since} and c.prefix <> '' and (b.released_at is null or c.minute > b.released_at)
      group by c.prefix, c.country
    ), quiet as (
      select country, sum(sent) as sent, sum(approved) as approved from p where p.sent < ${minSends} group by country
    )
    select p.prefix, p.country, p.sent, p.approved, coalesce(quiet.sent, 0) as quiet_sent, coalesce(quiet.approved, 0) as quiet_approved
    from p left join quiet using (country)
    where p.sent >= ${minSends}
  `.execute(db);
  return rows.map((r) => ({
    prefix: r.prefix,
    country: r.country,
    sent: Number(r.sent),
    approved: Number(r.approved),
    quietSent: Number(r.quiet_sent),
    quietApproved: Number(r.quiet_approved),
  }));
}
