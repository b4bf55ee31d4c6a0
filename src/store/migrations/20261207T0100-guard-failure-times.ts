import type { Kysely } from "kysely";
import { sql } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * When each address last got a wrong code, so that retention can drop the
 * guards of addresses nobody has guessed on for its window (once no lock is
 * in force). Without it the table keeps a row for every address that ever got
 * a wrong code. Rows from before count from this migration.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("destination_guards").addColumn("last_failed_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`)).execute();
  await db.schema.createIndex("destination_guards_last_failed").on("destination_guards").column("last_failed_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("destination_guards_last_failed").execute();
  await db.schema.alterTable("destination_guards").dropColumn("last_failed_at").execute();
}
