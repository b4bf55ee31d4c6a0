import { CompiledQuery } from "kysely";
import type { DeliveryReceipt, ReceiptStatus } from "../../domain/receipt.js";
import type { Executor, Trx } from "../database.js";
import type { ParkedReceiptRow } from "../tables/parked-receipts.js";
import type { VerificationRow } from "../tables/verifications.js";

/**
 * Serializes everything that concerns one provider message id for the rest of
 * the transaction: a receipt that did not find its attempt, and the worker
 * recording that id, cannot miss each other (one of them sees the other's commit).
 */
export async function lockProviderMessage(trx: Trx, provider: string, providerMessageId: string): Promise<void> {
  await trx.executeQuery(CompiledQuery.raw(LOCK_MESSAGE, [messageKey(provider, providerMessageId)]));
}

/**
 * The provider message id's lock, then its verification's row lock (the lock
 * order's first and second), in one statement: the uncorrelated EXISTS is a
 * one-time filter, run before the row is read. The row is its latest, read
 * under its lock; undefined if the verification is gone (pruned by retention).
 */
export async function lockMessageAndVerification(trx: Trx, provider: string, providerMessageId: string, verificationId: string): Promise<VerificationRow | undefined> {
  const { rows } = await trx.executeQuery<VerificationRow>(CompiledQuery.raw(LOCK_MESSAGE_THEN_VERIFICATION, [messageKey(provider, providerMessageId), verificationId]));
  return rows[0];
}

const LOCK_MESSAGE = "select pg_advisory_xact_lock(hashtextextended($1, 0))";
const LOCK_MESSAGE_THEN_VERIFICATION = `with message as (${LOCK_MESSAGE})
  select v.* from verifications v where v.id = $2 and exists (select 1 from message) for no key update`;

function messageKey(provider: string, providerMessageId: string): string {
  return `${provider}:${providerMessageId}`;
}

/** Keeps a receipt for an id no attempt carries yet; a repeated receipt is kept once. */
export async function parkReceipt(trx: Trx, receipt: DeliveryReceipt, now: Date): Promise<void> {
  await trx
    .insertInto("parked_receipts")
    .values({
      provider: receipt.provider,
      provider_message_id: receipt.providerMessageId,
      status: receipt.status,
      error_code: receipt.errorCode ?? null,
      error_reason: receipt.errorReason ?? null,
      occurred_at: receipt.occurredAt,
      received_at: now,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

/** Parked receipts (as `markSubmitted` takes them for the attempt that now carries their id) as receipts, in their order. */
export function receiptsFromParked(rows: readonly ParkedReceiptRow[]): DeliveryReceipt[] {
  return rows.map((row) => ({
    provider: row.provider,
    providerMessageId: row.provider_message_id,
    status: row.status as ReceiptStatus,
    ...(row.error_code !== null ? { errorCode: row.error_code } : {}),
    ...(row.error_reason !== null ? { errorReason: row.error_reason } : {}),
    occurredAt: row.occurred_at,
  }));
}

/** Drops receipts parked before `before` (no attempt ever claimed them); returns them for counting. */
export async function dropStaleParkedReceipts(db: Executor, before: Date): Promise<Array<{ provider: string }>> {
  return db.deleteFrom("parked_receipts").where("received_at", "<", before).returning("provider").execute();
}
