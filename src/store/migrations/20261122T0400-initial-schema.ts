import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("verifications")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("caller_id", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("policy", "text", (c) => c.notNull())
    .addColumn("destination", "jsonb", (c) => c.notNull())
    .addColumn("destination_key", "text", (c) => c.notNull())
    .addColumn("code_hash", "text", (c) => c.notNull())
    .addColumn("sealed_code", "text", (c) => c.notNull())
    .addColumn("render", "jsonb", (c) => c.notNull())
    .addColumn("plan", "jsonb", (c) => c.notNull())
    .addColumn("failed_attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("max_attempts", "integer", (c) => c.notNull())
    .addColumn("event_seq", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("client_reference", "text", (c) => c.notNull())
    .addColumn("metadata", "jsonb", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("approved_at", "timestamptz")
    .addColumn("approved_attempt_id", "text")
    .addColumn("ended_at", "timestamptz")
    .execute();
  await db.schema.createIndex("verifications_caller_created").on("verifications").columns(["caller_id", "created_at"]).execute();
  // The expiry sweep looks only at pending rows.
  await db.schema
    .createIndex("verifications_pending_expiry")
    .on("verifications")
    .column("expires_at")
    .where(sql.ref("status"), "=", "PENDING")
    .execute();

  await db.schema
    .createTable("attempts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("verification_id", "text", (c) => c.notNull().references("verifications.id"))
    .addColumn("step_index", "integer", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("route_id", "text", (c) => c.notNull())
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("sender", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("provider_message_id", "text")
    .addColumn("provider_error_code", "text")
    .addColumn("provider_error_reason", "text")
    .addColumn("currency", "text", (c) => c.notNull())
    .addColumn("price_micros", "bigint", (c) => c.notNull())
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("traceparent", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("submitted_at", "timestamptz")
    .addColumn("completed_at", "timestamptz")
    .addUniqueConstraint("attempts_one_per_step", ["verification_id", "step_index"])
    .execute();
  await db.schema
    .createIndex("attempts_provider_message")
    .on("attempts")
    .columns(["provider", "provider_message_id"])
    .execute();

  await db.schema
    .createTable("delivery_events")
    .addColumn("verification_id", "text", (c) => c.notNull().references("verifications.id"))
    .addColumn("sequence", "bigint", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("attempt_id", "text")
    .addColumn("channel", "text")
    .addColumn("route_id", "text")
    .addColumn("status", "text")
    .addColumn("provider_message_id", "text")
    .addColumn("provider_error_code", "text")
    .addColumn("provider_error_reason", "text")
    .addColumn("reason", "text")
    .addColumn("currency", "text")
    .addColumn("price_micros", "bigint")
    .addColumn("latency_ms", "bigint")
    .addColumn("trace_id", "text", (c) => c.notNull())
    .addColumn("occurred_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("delivery_events_pk", ["verification_id", "sequence"])
    .execute();

  await db.schema
    .createTable("outbox")
    .addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn("msg_id", "text", (c) => c.notNull().unique())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("headers", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("published_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("outbox_unpublished")
    .on("outbox")
    .column("id")
    .where(sql.ref("published_at"), "is", null)
    .execute();

  await db.schema
    .createTable("idempotency_keys")
    .addColumn("caller_id", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("request_hash", "text", (c) => c.notNull())
    .addColumn("verification_id", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("idempotency_keys_pk", ["caller_id", "key"])
    // Deferred: SendOtp claims the key before it creates the verification the key points to.
    .addForeignKeyConstraint("idempotency_keys_verification_fk", ["verification_id"], "verifications", ["id"], (fk) =>
      fk.deferrable().initiallyDeferred(),
    )
    .execute();

  await db.schema
    .createTable("rate_limit_counters")
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("window_start", "timestamptz", (c) => c.notNull())
    .addColumn("count", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("rate_limit_counters_pk", ["key", "window_start"])
    .execute();

  await db.schema
    .createTable("destination_guards")
    .addColumn("destination_key", "text", (c) => c.primaryKey())
    .addColumn("consecutive_failures", "integer", (c) => c.notNull())
    .addColumn("lock_count", "integer", (c) => c.notNull())
    .addColumn("locked_until", "timestamptz")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["destination_guards", "rate_limit_counters", "idempotency_keys", "outbox", "delivery_events", "attempts", "verifications"]) {
    await db.schema.dropTable(table).execute();
  }
}
