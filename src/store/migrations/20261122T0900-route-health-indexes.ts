import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/** Route health reads the last hour of finished attempts and delivery latencies every few seconds. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("attempts_completed").on("attempts").column("completed_at").where(sql.ref("completed_at"), "is not", null).execute();
  await db.schema
    .createIndex("delivery_events_delivered")
    .on("delivery_events")
    .column("occurred_at")
    .where(sql.ref("kind"), "=", "ATTEMPT_DELIVERED")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("delivery_events_delivered").execute();
  await db.schema.dropIndex("attempts_completed").execute();
}
