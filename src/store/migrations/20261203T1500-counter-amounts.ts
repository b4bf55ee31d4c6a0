import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Window counters also add up money (a caller's daily spend per country, in micros), which outgrows an integer at
 * 2,147 units of a currency.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("rate_limit_counters").alterColumn("count", (c) => c.setDataType("bigint")).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom("rate_limit_counters").where("key", "like", "spend:%").execute();
  await db.schema.alterTable("rate_limit_counters").alterColumn("count", (c) => c.setDataType("integer")).execute();
}
