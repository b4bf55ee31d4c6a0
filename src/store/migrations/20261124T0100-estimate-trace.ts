import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/** An estimate keeps the trace context of its EstimateOtp call: a SendOtp bound to it continues that trace. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("estimates").addColumn("traceparent", "text").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("estimates").dropColumn("traceparent").execute();
}
