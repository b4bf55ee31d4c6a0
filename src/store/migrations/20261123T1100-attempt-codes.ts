import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Each attempt carries a code of its own, so an approval names the channel whose
 * message carried the code that was used. Earlier attempts share their
 * verification's code (the columns stay empty and the verification's code counts).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("attempts").addColumn("code_hash", "text").addColumn("sealed_code", "text").execute();
  await db.schema.alterTable("verifications").addColumn("code_length", "integer", (c) => c.notNull().defaultTo(6)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("verifications").dropColumn("code_length").execute();
  await db.schema.alterTable("attempts").dropColumn("code_hash").dropColumn("sealed_code").execute();
}
