import type { Executor, Trx } from "../database.js";
import type { AttemptRow, NewAttemptRow } from "../tables/attempts.js";

export async function insertAttempt(trx: Trx, row: NewAttemptRow): Promise<void> {
  await trx.insertInto("attempts").values(row).execute();
}

export async function findAttempt(db: Executor, id: string): Promise<AttemptRow | undefined> {
  return db.selectFrom("attempts").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function listAttempts(db: Executor, verificationId: string): Promise<AttemptRow[]> {
  return db.selectFrom("attempts").selectAll().where("verification_id", "=", verificationId).orderBy("step_index").execute();
}

/** Moves a QUEUED attempt to SUBMITTED; undefined if it was not QUEUED (already handled or canceled). */
export async function markSubmitted(
  trx: Trx,
  id: string,
  providerMessageId: string,
  now: Date,
): Promise<AttemptRow | undefined> {
  return trx
    .updateTable("attempts")
    .set({ status: "SUBMITTED", provider_message_id: providerMessageId, submitted_at: now })
    .where("id", "=", id)
    .where("status", "=", "QUEUED")
    .returningAll()
    .executeTakeFirst();
}

/**
 * Records a final delivery status on a QUEUED or SUBMITTED attempt. Statuses only
 * move forward: a late receipt for a finished attempt changes nothing.
 */
export async function markFinished(
  trx: Trx,
  id: string,
  status: "DELIVERED" | "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED",
  now: Date,
  error?: { code: string; reason: string },
): Promise<AttemptRow | undefined> {
  return trx
    .updateTable("attempts")
    .set({
      status,
      completed_at: now,
      provider_error_code: error?.code ?? null,
      provider_error_reason: error?.reason ?? null,
    })
    .where("id", "=", id)
    .where("status", "in", ["QUEUED", "SUBMITTED"])
    .returningAll()
    .executeTakeFirst();
}

/** Cancels a verification's attempts that were never submitted. */
export async function cancelQueued(trx: Trx, verificationId: string, now: Date): Promise<AttemptRow[]> {
  return trx
    .updateTable("attempts")
    .set({ status: "CANCELED", completed_at: now })
    .where("verification_id", "=", verificationId)
    .where("status", "=", "QUEUED")
    .returningAll()
    .execute();
}

/** The attempt whose message most plausibly carried the code: the latest delivered, else the latest submitted. */
export async function latestReachingAttempt(db: Executor, verificationId: string): Promise<AttemptRow | undefined> {
  const attempts = await listAttempts(db, verificationId);
  const latest = (status: string) => attempts.filter((a) => a.status === status).at(-1);
  return latest("DELIVERED") ?? latest("SUBMITTED") ?? attempts.at(-1);
}
