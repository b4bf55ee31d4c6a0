import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Sends (attempts a provider accepted) and approvals per minute, by route, destination country and number prefix:
 * conversion (approved ÷ sent) is what says a route or a range of numbers works — receipts can lie both ways — and
 * a prefix flooded with sends nobody verifies is what SMS pumping looks like. Each count is spread over shards, as
 * in route_outcomes, so a busy route's sends do not queue on one row.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("conversion_counts")
    .addColumn("minute", "timestamptz", (c) => c.notNull())
    .addColumn("route_id", "text", (c) => c.notNull())
    .addColumn("country", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("shard", "smallint", (c) => c.notNull())
    .addColumn("sent", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("approved", "integer", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("conversion_counts_pkey", ["minute", "route_id", "country", "prefix", "shard"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("conversion_counts").execute();
}
