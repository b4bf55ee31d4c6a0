import type { Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/**
 * Number prefixes the SMS-pumping detector flagged: many sends, almost no approvals. One row per prefix, the latest
 * flag (a block that ran out and is flagged again is the same row, renewed); `mode` 'monitor' only reports.
 * `released_at`: an operator lifted the block, and the sends before it no longer count against the prefix.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("prefix_blocks")
    .addColumn("prefix", "text", (c) => c.primaryKey())
    .addColumn("country", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("blocked_at", "timestamptz", (c) => c.notNull())
    .addColumn("until", "timestamptz", (c) => c.notNull())
    .addColumn("released_at", "timestamptz")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("prefix_blocks").execute();
}
