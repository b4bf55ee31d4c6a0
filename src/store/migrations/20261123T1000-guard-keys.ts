import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Every address a verification's plan may send to is guarded (rate windows,
 * wrong-code locks), not only the first: the keys are kept with the
 * verification. Earlier rows guard their one destination key.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("verifications").addColumn("guard_keys", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`)).execute();
  await sql`update verifications set guard_keys = jsonb_build_array(destination_key)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("verifications").dropColumn("guard_keys").execute();
}
