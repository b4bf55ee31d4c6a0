import { NotFoundError } from "../domain/errors.js";
import { listAttempts } from "../store/repositories/attempts.js";
import { listDeliveryEvents } from "../store/repositories/delivery-events.js";
import { claimExpired, endIfPending, findVerification, verificationTraceparent } from "../store/repositories/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import type { DeliveryEvent } from "../domain/delivery-event.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { eventFromRow, holdsVerification, recordEvent } from "./events.js";
import { cancelUnsentAttempts } from "./attempt-lifecycle.js";
import { attemptView, verificationView, type AttemptView, type VerificationView } from "./views.js";
import { ATTR, contextOf, inSpan } from "../telemetry/spans.js";

export interface VerificationDetails {
  readonly verification: VerificationView;
  readonly attempts: readonly AttemptView[];
  readonly events: readonly DeliveryEvent[];
}

/** Current state and the full timeline of one of the caller's verifications. */
export async function getVerification(deps: ServiceDeps, caller: Caller, verificationId: string): Promise<VerificationDetails> {
  const row = await findVerification(deps.db, verificationId, caller.id);
  if (row === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
  const [attempts, events] = await Promise.all([listAttempts(deps.db, row.id), listDeliveryEvents(deps.db, row.id)]);
  return {
    verification: verificationView(row, deps.clock.now()),
    attempts: attempts.map(attemptView),
    events: events.map(eventFromRow),
  };
}

/**
 * Stops a pending verification and its unsent attempts. Canceling a verification
 * that has already ended changes nothing and returns its state.
 */
export async function cancelOtp(deps: ServiceDeps, caller: Caller, verificationId: string): Promise<VerificationDetails> {
  await inTransaction(deps.db, async (uow) => {
    const row = await findVerification(uow.trx, verificationId, caller.id);
    if (row === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
    await end(deps, uow, { id: row.id, trace_id: row.trace_id, traceparent: (await verificationTraceparent(uow.trx, row.id)) ?? null }, "CANCELED");
  });
  return getVerification(deps, caller, verificationId);
}

/**
 * Ends pending verifications whose code has expired, a batch at a time.
 * Replicas may run it together: claimed rows are skipped by the others.
 */
export async function expireDue(deps: ServiceDeps, batchSize = 100): Promise<number> {
  return inTransaction(deps.db, async (uow) => {
    const due = await claimExpired(uow.trx, deps.clock.now(), batchSize);
    for (const verification of due) await end(deps, uow, verification, "EXPIRED");
    return due.length;
  });
}

/** Ends a pending verification; a step of its trace (`otp.cancel`, `otp.expire`), linked to the request or sweep that ended it. */
async function end(deps: ServiceDeps, uow: UnitOfWork, verification: EndingVerification, status: "CANCELED" | "EXPIRED"): Promise<void> {
  const { id, trace_id: traceId } = verification;
  const span = { parent: contextOf(verification.traceparent), linkActive: true, attributes: { [ATTR.verificationId]: id, [ATTR.status]: status } };
  await inSpan(status === "CANCELED" ? "otp.cancel" : "otp.expire", span, async () => {
    const now = deps.clock.now();
    const ended = await endIfPending(uow.trx, id, status, now);
    if (ended === undefined) return;
    holdsVerification(uow, ended);
    await cancelUnsentAttempts(uow, id, now);
    await recordEvent(uow, { verificationId: id, kind: status, traceId, occurredAt: now }, deps.onOutboxWritten);
  });
}

interface EndingVerification {
  readonly id: string;
  readonly trace_id: string;
  readonly traceparent: string | null;
}
