import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Route outcomes by destination country too: adaptive deadlines use a route's receipt latency in the country a
 * code goes to when there is enough of it (a route fast in one country may be slow in another). Rows so far count
 * under country '' (unknown), which only the route-wide figures read.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("route_outcomes").addColumn("country", "text", (c) => c.notNull().defaultTo("")).execute();
  await db.schema.alterTable("route_outcomes").dropConstraint("route_outcomes_pkey").execute();
  await db.schema.alterTable("route_outcomes").addPrimaryKeyConstraint("route_outcomes_pkey", ["minute", "route_id", "country", "latency_le_ms", "shard"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  // Folds the countries back into one row per route, minute, bucket and shard.
  await sql`
    create table route_outcomes_folded as
    select minute, route_id, latency_le_ms, shard, sum(attempts)::integer as attempts, sum(latency_ms_sum)::bigint as latency_ms_sum
    from route_outcomes group by 1, 2, 3, 4`.execute(db);
  await db.schema.dropTable("route_outcomes").execute();
  await sql`alter table route_outcomes_folded rename to route_outcomes`.execute(db);
  await sql`alter table route_outcomes alter column attempts set not null, alter column latency_ms_sum set not null`.execute(db);
  await db.schema.alterTable("route_outcomes").addPrimaryKeyConstraint("route_outcomes_pkey", ["minute", "route_id", "latency_le_ms", "shard"]).execute();
}
