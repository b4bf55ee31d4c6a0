import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

export async function up(db: Kysely<any>): Promise<void> {
  // A metered caller has a balance row; callers without one are not metered.
  await db.schema
    .createTable("caller_balances")
    .addColumn("caller_id", "text", (c) => c.primaryKey())
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("balance_micros", "bigint", (c) => c.notNull())
    .addCheckConstraint("caller_balances_not_negative", sql`balance_micros >= 0`)
    .execute();
  // One row per movement; the key ("opening:<caller>", "debit:<attempt>", "refund:<attempt>") makes each happen once.
  await db.schema
    .createTable("ledger_entries")
    .addColumn("entry_key", "text", (c) => c.primaryKey())
    .addColumn("caller_id", "text", (c) => c.notNull())
    .addColumn("attempt_id", "text")
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("amount_micros", "bigint", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("ledger_entries_caller").on("ledger_entries").columns(["caller_id", "created_at"]).execute();

  await db.schema
    .createTable("estimates")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("caller_id", "text", (c) => c.notNull())
    .addColumn("request_hash", "text", (c) => c.notNull())
    .addColumn("plan", "jsonb", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("estimates_expiry").on("estimates").column("expires_at").execute();

  // The fallback plan's durable timer: when the current step's deadline passes (or an attempt fails), the scheduler acts.
  await db.schema
    .alterTable("verifications")
    .addColumn("current_step", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_step_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("verifications_due_step")
    .on("verifications")
    .column("next_step_at")
    .where(sql.ref("status"), "=", "PENDING")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("verifications_due_step").execute();
  await db.schema.alterTable("verifications").dropColumn("current_step").dropColumn("next_step_at").execute();
  for (const table of ["estimates", "ledger_entries", "caller_balances"]) await db.schema.dropTable(table).execute();
}
