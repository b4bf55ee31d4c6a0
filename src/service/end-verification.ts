import { NotFoundError } from "../domain/errors.js";
import { outboxRow } from "../store/repositories/outbox.js";
import { claimExpired, endVerifications, lockForEnding, readVerificationRecord, type EndingVerification } from "../store/repositories/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import type { DeliveryEvent } from "../domain/delivery-event.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { eventFromRow, eventRows } from "./events.js";
import { refundCanceled } from "./attempt-lifecycle.js";
import { attemptView, verificationView, type AttemptView, type VerificationView } from "./views.js";
import { ATTR, contextOf, inSpan, markSpan } from "../telemetry/spans.js";

export interface VerificationDetails {
  readonly verification: VerificationView;
  readonly attempts: readonly AttemptView[];
  readonly events: readonly DeliveryEvent[];
}

/** Current state and the full timeline of one of the caller's verifications. */
export async function getVerification(deps: ServiceDeps, caller: Caller, verificationId: string): Promise<VerificationDetails> {
  const record = await readVerificationRecord(deps.db, verificationId, caller.id);
  if (record === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
  return {
    verification: verificationView(record.verification, deps.clock.now()),
    attempts: record.attempts.map(attemptView),
    events: record.events.map(eventFromRow),
  };
}

/**
 * Stops a pending verification and its unsent attempts. Canceling a verification
 * that has already ended changes nothing and returns its state.
 */
export async function cancelOtp(deps: ServiceDeps, caller: Caller, verificationId: string): Promise<VerificationDetails> {
  await inTransaction(deps.db, async (uow) => {
    const row = await lockForEnding(uow.trx, verificationId, caller.id);
    if (row === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
    if (row.status !== "PENDING") return;
    // A step of the verification's trace, linked to the request that ended it.
    const span = { parent: contextOf(row.traceparent), linkActive: true, attributes: { [ATTR.verificationId]: row.id, [ATTR.status]: "CANCELED" } };
    await inSpan("otp.cancel", span, () => endHeld(deps, uow, [row], "CANCELED"));
  });
  return getVerification(deps, caller, verificationId);
}

/**
 * Ends pending verifications whose code has expired, a batch at a time, in
 * four statements whatever the batch's size (BEGIN, the claim, one write,
 * COMMIT; more only to refund attempts no provider call had started).
 * Replicas may run it together: claimed rows are skipped by the others.
 */
export async function expireDue(deps: ServiceDeps, batchSize = 100): Promise<number> {
  return inTransaction(deps.db, async (uow) => {
    const due = await claimExpired(uow.trx, deps.clock.now(), batchSize);
    await endHeld(deps, uow, due, "EXPIRED");
    // Each verification's trace shows its expiry (`otp.expire`, under its send), once it happened.
    uow.afterCommit(() => {
      for (const v of due) markSpan("otp.expire", v.traceparent, { [ATTR.verificationId]: v.id, [ATTR.status]: "EXPIRED" }, deps.random);
    });
    return due.length;
  });
}

/** Ends pending verifications this transaction has locked: one write, whatever their number; their unsent attempts are refunded. */
async function endHeld(deps: ServiceDeps, uow: UnitOfWork, held: readonly EndingVerification[], status: "CANCELED" | "EXPIRED"): Promise<void> {
  if (held.length === 0) return;
  const now = deps.clock.now();
  const rows = held.map((v) => eventRows({ sequence: v.event_seq + 1, verificationId: v.id, kind: status, traceId: v.trace_id, occurredAt: now }));
  const canceled = await endVerifications(uow.trx, {
    status,
    now,
    ended: held.map((v) => ({ id: v.id, heldEventSeq: v.event_seq })),
    events: rows.map((r) => r.event),
    outbox: rows.map((r) => outboxRow(r.outbox, now)),
  });
  for (const v of held) uow.eventSequences.set(v.id, v.event_seq + 1);
  await refundCanceled(uow, canceled, now);
  uow.afterCommit(() => deps.onOutboxWritten(rows.map((r) => r.outbox)));
}
