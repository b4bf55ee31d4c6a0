import { sql } from "kysely";
import type { Db, Trx } from "../database.js";

/**
 * Batched deletes of rows past their retention window. Each call deletes at
 * most `limit` rows found through an index and returns how many it deleted,
 * so a caller loops while batches come back full and no statement holds many
 * locks for long. Each batch is the oldest rows, in the index's order: without
 * the order, statistics taken while a table was small made the planner read
 * the table from its start for the batch, the whole table when nothing was
 * due yet (table-growth.test.ts).
 */

export async function deletePublishedOutbox(db: Db, before: Date, limit: number): Promise<number> {
  const rows = await db
    .deleteFrom("outbox")
    .where("id", "in", (eb) => eb.selectFrom("outbox").select("id").where("published_at", "<", before).orderBy("published_at").limit(limit))
    .returning("id")
    .execute();
  return rows.length;
}

export async function deleteWindowCounters(db: Db, before: Date, limit: number): Promise<number> {
  const result = await sql`delete from rate_limit_counters where ctid in (select ctid from rate_limit_counters where window_start < ${before} order by window_start limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export async function deleteRouteOutcomes(db: Db, before: Date, limit: number): Promise<number> {
  const result = await sql`delete from route_outcomes where ctid in (select ctid from route_outcomes where minute < ${before} order by minute limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export async function deleteConversionCounts(db: Db, before: Date, limit: number): Promise<number> {
  const result = await sql`delete from conversion_counts where ctid in (select ctid from conversion_counts where minute < ${before} order by minute limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export async function deleteIdempotencyKeys(db: Db, before: Date, limit: number): Promise<number> {
  const result = await sql`delete from idempotency_keys where ctid in (select ctid from idempotency_keys where created_at < ${before} order by created_at limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Guards of addresses whose last wrong code came before `before` and that are
 * not locked at `now`: their run of wrong codes and their locks so far are
 * forgotten. A guard a wrong code touches meanwhile is a new row version,
 * which the delete (by the old one's ctid) leaves alone.
 */
export async function deleteIdleGuards(db: Db, before: Date, now: Date, limit: number): Promise<number> {
  const result = await sql`delete from destination_guards where ctid in (select ctid from destination_guards where last_failed_at < ${before} and (locked_until is null or locked_until <= ${now}) order by last_failed_at limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Verifications that ended before `before`, with their attempts and events.
 * The verifications are locked first (SKIP LOCKED: one that a late receipt is
 * touching waits for the next round), as the lifecycle's lock order asks.
 * Ledger entries stay: they are the caller's account, not delivery history.
 */
export async function deleteEndedVerifications(trx: Trx, before: Date, limit: number): Promise<number> {
  const doomed = await trx
    .selectFrom("verifications")
    .select("id")
    .where("ended_at", "<", before)
    .orderBy("ended_at")
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  if (doomed.length === 0) return 0;
  const ids = doomed.map((v) => v.id);
  await trx.deleteFrom("delivery_events").where("verification_id", "in", ids).execute();
  await trx.deleteFrom("attempts").where("verification_id", "in", ids).execute();
  await trx.deleteFrom("verifications").where("id", "in", ids).execute();
  return ids.length;
}
