import type { Executor } from "../database.js";

export interface StoredEstimate {
  readonly id: string;
  readonly callerId: string;
  readonly requestHash: string;
  readonly plan: unknown;
  readonly expiresAt: Date;
}

export async function insertEstimate(db: Executor, estimate: StoredEstimate, now: Date): Promise<void> {
  await db
    .insertInto("estimates")
    .values({ id: estimate.id, caller_id: estimate.callerId, request_hash: estimate.requestHash, plan: JSON.stringify(estimate.plan), created_at: now, expires_at: estimate.expiresAt })
    .execute();
}

/** The caller's estimate if it has not expired; another caller's is as unknown as a missing one. */
export async function findLiveEstimate(db: Executor, id: string, callerId: string, now: Date): Promise<StoredEstimate | undefined> {
  const row = await db
    .selectFrom("estimates")
    .selectAll()
    .where("id", "=", id)
    .where("caller_id", "=", callerId)
    .where("expires_at", ">", now)
    .executeTakeFirst();
  return row && { id: row.id, callerId: row.caller_id, requestHash: row.request_hash, plan: row.plan, expiresAt: row.expires_at };
}

export async function deleteExpiredEstimates(db: Executor, now: Date): Promise<number> {
  const result = await db.deleteFrom("estimates").where("expires_at", "<=", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
