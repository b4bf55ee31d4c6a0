import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/** Latency bucket upper bounds (ms) of the backfill; later rows carry their own bound, so the app may change its list. */
const BACKFILL_BOUNDS_MS = sql.raw("array[500, 1000, 2000, 3000, 5000, 8000, 13000, 20000, 30000, 60000, 120000, 300000, 2147483647]");

/**
 * Route health reads per-minute rollups of finished attempts, kept up to date
 * as attempts finish, instead of scanning the last hour of attempts and events:
 * its cost follows routes × minutes, not traffic. A row counts the attempts of
 * one route that finished in one minute: undelivered (latency_le_ms = -1) or
 * delivered within one latency bucket (latency_le_ms its exclusive upper bound,
 * with their latencies' sum). Each such count is spread over a few shards
 * (by attempt id), so receipts for one busy route do not queue on one row.
 * The last hour is backfilled; the indexes the scans needed go.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("route_outcomes")
    .addColumn("minute", "timestamptz", (c) => c.notNull())
    .addColumn("route_id", "text", (c) => c.notNull())
    .addColumn("latency_le_ms", "integer", (c) => c.notNull())
    .addColumn("shard", "smallint", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("latency_ms_sum", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("route_outcomes_pkey", ["minute", "route_id", "latency_le_ms", "shard"])
    .execute();
  await sql`
    insert into route_outcomes (minute, route_id, latency_le_ms, shard, attempts, latency_ms_sum)
    select date_trunc('minute', a.completed_at), a.route_id,
           case when a.status = 'DELIVERED' then (${BACKFILL_BOUNDS_MS})[width_bucket(least(coalesce(e.latency_ms, 0), 2147483646), ${BACKFILL_BOUNDS_MS}) + 1] else -1 end,
           0, count(*), coalesce(sum(e.latency_ms), 0)
    from attempts a
    left join delivery_events e on e.attempt_id = a.id and e.kind = 'ATTEMPT_DELIVERED'
    where a.completed_at >= now() - interval '1 hour' and a.submitted_at is not null
      and a.status in ('DELIVERED', 'UNDELIVERED', 'EXPIRED', 'FAILED', 'REJECTED')
    group by 1, 2, 3`.execute(db);
  await db.schema.dropIndex("delivery_events_delivered").execute();
  await db.schema.dropIndex("attempts_completed").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("attempts_completed").on("attempts").column("completed_at").where(sql.ref("completed_at"), "is not", null).execute();
  await db.schema
    .createIndex("delivery_events_delivered")
    .on("delivery_events")
    .column("occurred_at")
    .where(sql.ref("kind"), "=", "ATTEMPT_DELIVERED")
    .execute();
  await db.schema.dropTable("route_outcomes").execute();
}
