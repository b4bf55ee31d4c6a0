import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * The retention loop deletes old rows in small batches; each batch must find
 * its rows by index, not by scanning the table. Attempts by verification also
 * serve every read of a verification's attempts.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("attempts_verification").on("attempts").columns(["verification_id", "step_index"]).execute();
  await db.schema.createIndex("verifications_ended").on("verifications").column("ended_at").where(sql.ref("ended_at"), "is not", null).execute();
  await db.schema.createIndex("outbox_published").on("outbox").column("published_at").where(sql.ref("published_at"), "is not", null).execute();
  await db.schema.createIndex("rate_limit_counters_window").on("rate_limit_counters").column("window_start").execute();
  await db.schema.createIndex("idempotency_keys_created").on("idempotency_keys").column("created_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const index of ["idempotency_keys_created", "rate_limit_counters_window", "outbox_published", "verifications_ended", "attempts_verification"]) {
    await db.schema.dropIndex(index).execute();
  }
}
