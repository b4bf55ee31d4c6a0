import { sql, type Kysely } from "kysely";

// Migrations are frozen history: typed Kysely<any>, importing nothing from the app.

/** The tables with an index on `caller_id`. */
const BY_CALLER = ["verifications", "ledger_entries"];

/**
 * Indexes the planner cannot pick wrongly from statistics taken while a table
 * was small (a new install, until autovacuum catches up; a prepared
 * statement's cached plan keeps them longer). Taken over a few rows, a column
 * with few distinct values looks unique, and its index then looks as good as
 * the one that is (BENCHMARKS.md (24)):
 *
 * - The window counters had an index on the window alone: a counter was then
 *   found by its window with its key filtered, reading every counter of that
 *   window (up to 800 ms a statement in the bench). One index led by the
 *   window now finds a counter by window and key, and retention's old windows
 *   by range.
 * - Idempotency keys had their primary key led by the caller, and a cached
 *   plan looked a send's key up by its caller alone, reading every key of
 *   that caller. It is now led by the key, which is nearly unique whatever
 *   the statistics say.
 * - `caller_id` leads an index on two tables, and a verification looked up
 *   by id and caller was read through the caller's index: every verification
 *   of that caller. Callers are the services that call this one, a few tens
 *   however many rows they leave, and the planner is now told so. It applies
 *   from the table's next ANALYZE, which autovacuum runs. Not run here: a
 *   table analyzed while empty is planned as empty until the next one, and
 *   the foreign-key checks' cached plans then read `verifications` whole for
 *   each attempt inserted (100-400 ms a send's statement in the bench).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table rate_limit_counters drop constraint rate_limit_counters_pk, add constraint rate_limit_counters_pk primary key (window_start, key)`.execute(db);
  await db.schema.dropIndex("rate_limit_counters_window").execute();
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk, add constraint idempotency_keys_pk primary key (key, caller_id)`.execute(db);
  for (const table of BY_CALLER) await sql`alter table ${sql.table(table)} alter column caller_id set (n_distinct = 100)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of BY_CALLER) await sql`alter table ${sql.table(table)} alter column caller_id reset (n_distinct)`.execute(db);
  await sql`alter table idempotency_keys drop constraint idempotency_keys_pk, add constraint idempotency_keys_pk primary key (caller_id, key)`.execute(db);
  await db.schema.createIndex("rate_limit_counters_window").on("rate_limit_counters").column("window_start").execute();
  await sql`alter table rate_limit_counters drop constraint rate_limit_counters_pk, add constraint rate_limit_counters_pk primary key (key, window_start)`.execute(db);
}
