import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * `attempts_verification` (2026-11-23) indexes exactly the columns of the `attempts_one_per_step` unique constraint,
 * which serves the same reads and deletes: every attempt written maintained both.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("attempts_verification").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex("attempts_verification").on("attempts").columns(["verification_id", "step_index"]).execute();
}
