import type { Executor } from "../database.js";

export interface StoredEstimate {
  readonly id: string;
  readonly callerId: string;
  readonly requestHash: string;
  readonly plan: unknown;
  readonly expiresAt: Date;
  /** The trace context of the EstimateOtp call. */
  readonly traceparent?: string;
}

export async function insertEstimate(db: Executor, estimate: StoredEstimate, now: Date): Promise<void> {
  await db
    .insertInto("estimates")
    .values({ id: estimate.id, caller_id: estimate.callerId, request_hash: estimate.requestHash, plan: JSON.stringify(estimate.plan), created_at: now, expires_at: estimate.expiresAt, traceparent: estimate.traceparent ?? null })
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
  return row && { id: row.id, callerId: row.caller_id, requestHash: row.request_hash, plan: row.plan, expiresAt: row.expires_at, ...(row.traceparent ? { traceparent: row.traceparent } : {}) };
}

/** The trace context of the caller's estimate, whether or not it is still live (a send bound to it continues its trace). */
export async function estimateTraceparent(db: Executor, id: string, callerId: string): Promise<string | undefined> {
  const row = await db.selectFrom("estimates").select("traceparent").where("id", "=", id).where("caller_id", "=", callerId).executeTakeFirst();
  return row?.traceparent ?? undefined;
}

export async function deleteExpiredEstimates(db: Executor, now: Date): Promise<number> {
  const result = await db.deleteFrom("estimates").where("expires_at", "<=", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
