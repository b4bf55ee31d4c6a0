import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("attempts")
    // Set before a provider call and cleared when the call failed for certain: a redelivered
    // attempt that finds it set knows an earlier call may have reached the provider.
    .addColumn("submit_started_at", "timestamptz")
    .addColumn("submit_tries", "integer", (c) => c.notNull().defaultTo(0))
    // When the receipt poller next asks the provider about a submitted attempt.
    .addColumn("next_poll_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("attempts_due_poll")
    .on("attempts")
    .columns(["provider", "next_poll_at"])
    .where(sql.ref("status"), "=", "SUBMITTED")
    .execute();

  // Receipts that arrived before the worker recorded the provider message id they name.
  await db.schema
    .createTable("parked_receipts")
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("provider_message_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("error_code", "text")
    .addColumn("error_reason", "text")
    .addColumn("occurred_at", "timestamptz", (c) => c.notNull())
    .addColumn("received_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("parked_receipts_pk", ["provider", "provider_message_id", "status"])
    .execute();
  await db.schema.createIndex("parked_receipts_received").on("parked_receipts").column("received_at").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("parked_receipts").execute();
  await db.schema.dropIndex("attempts_due_poll").execute();
  await db.schema.alterTable("attempts").dropColumn("submit_started_at").dropColumn("submit_tries").dropColumn("next_poll_at").execute();
}
