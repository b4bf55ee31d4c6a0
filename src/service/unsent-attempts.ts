import { cancelQueued } from "../store/repositories/attempts.js";
import { refundAttempt } from "../store/repositories/ledger.js";
import type { UnitOfWork } from "../store/transaction.js";

/** Cancels a verification's attempts that were never submitted, and gives back what they were charged. */
export async function cancelUnsentAttempts(uow: UnitOfWork, verificationId: string, now: Date): Promise<void> {
  for (const attempt of await cancelQueued(uow.trx, verificationId, now)) await refundAttempt(uow.trx, attempt.id, now);
}
