import type { Executor, Trx } from "../database.js";
import type { IdempotencyKeyRow } from "../tables/idempotency-keys.js";

/**
 * Claims an idempotency key for a new verification. Returns undefined when the
 * key is now ours, or the row that already holds it. A concurrent claim of the
 * same key waits on the unique index until the first transaction ends.
 */
export async function claimIdempotencyKey(
  trx: Trx,
  row: { callerId: string; key: string; requestHash: string; verificationId: string; now: Date },
): Promise<IdempotencyKeyRow | undefined> {
  const inserted = await trx
    .insertInto("idempotency_keys")
    .values({
      caller_id: row.callerId,
      key: row.key,
      request_hash: row.requestHash,
      verification_id: row.verificationId,
      created_at: row.now,
    })
    .onConflict((oc) => oc.columns(["caller_id", "key"]).doNothing())
    .returning("key")
    .executeTakeFirst();
  if (inserted !== undefined) return undefined;
  return findIdempotencyKey(trx, row.callerId, row.key);
}

/** The row holding a caller's idempotency key, if any. */
export async function findIdempotencyKey(db: Executor, callerId: string, key: string): Promise<IdempotencyKeyRow | undefined> {
  return db.selectFrom("idempotency_keys").selectAll().where("caller_id", "=", callerId).where("key", "=", key).executeTakeFirst();
}
