import type { Channel } from "../domain/channel.js";
import type { Clock } from "../domain/ports.js";
import { isFinalReceipt, type DeliveryReceipt } from "../domain/receipt.js";
import type { Db } from "../store/database.js";
import { findByProviderMessage, markFinished, markSubmitted } from "../store/repositories/attempts.js";
import { refundAttempt } from "../store/repositories/ledger.js";
import { lockProviderMessage, parkReceipt, takeParkedReceipts } from "../store/repositories/parked-receipts.js";
import { escalateNow } from "../store/repositories/verifications.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import { recordEvent, type NewDeliveryEvent } from "./events.js";

/** What recording an attempt's outcome needs: the store, the time, and a nudge for the outbox relay. */
export interface OutcomeDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly onOutboxWritten: () => void;
}

export type FailureStatus = "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED";

export interface Submission {
  readonly providerMessageId: string;
  /** The provider reported delivery in its answer (sandbox providers). */
  readonly delivered: boolean;
  /** When the receipt poller should first ask about it; null when receipts are pushed. */
  readonly firstPollAt: Date | null;
}

/**
 * Records that the provider accepted an attempt (ATTEMPT_SUBMITTED with its
 * message id and price), then applies any receipt that arrived for that id
 * before this moment. Nothing happens if the attempt is no longer QUEUED.
 */
export async function recordSubmitted(deps: OutcomeDeps, attempt: AttemptRow, submission: Submission): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    const submitted = await markSubmitted(uow.trx, attempt.id, submission.providerMessageId, now, submission.firstPollAt);
    if (submitted === undefined) return;
    await record(deps, uow, submitted, {
      kind: "ATTEMPT_SUBMITTED",
      status: "SUBMITTED",
      providerMessageId: submission.providerMessageId,
      currency: submitted.currency,
      priceMicros: submitted.price_micros,
      occurredAt: now,
    });
    const early: DeliveryReceipt[] = submission.delivered
      ? [{ provider: submitted.provider, providerMessageId: submission.providerMessageId, status: "DELIVERED", occurredAt: now }]
      : [];
    await lockProviderMessage(uow.trx, submitted.provider, submission.providerMessageId);
    early.push(...(await takeParkedReceipts(uow.trx, submitted.provider, submission.providerMessageId)));
    for (const receipt of early) await applyToAttempt(deps, uow, submitted, receipt, now);
  });
}

/** Ends a QUEUED or SUBMITTED attempt without delivery (ATTEMPT_FAILED); nothing if it had already ended. */
export async function recordAttemptFailure(
  deps: OutcomeDeps,
  attempt: AttemptRow,
  status: FailureStatus,
  error: { code: string; reason: string },
): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    const ended = await markFinished(uow.trx, attempt.id, status, now, error);
    if (ended === undefined) return;
    await record(deps, uow, ended, { kind: "ATTEMPT_FAILED", status, providerErrorCode: error.code, providerErrorReason: error.reason, occurredAt: now });
    // Never accepted by a provider: not charged. (An outcome_unknown send may have gone out, and been billed.)
    if (ended.submitted_at === null && error.code !== "outcome_unknown") await refundAttempt(uow.trx, ended.id, now);
    await escalateNow(uow.trx, ended.verification_id, ended.step_index, now);
  });
}

export type ReceiptOutcome = "applied" | "unchanged" | "parked";

/**
 * Applies a delivery receipt to the attempt carrying its provider message id.
 * Statuses only move forward, so a repeated or late receipt changes nothing.
 * A receipt for an id no attempt carries yet is parked until the worker records it.
 */
export async function applyReceipt(deps: OutcomeDeps, receipt: DeliveryReceipt): Promise<ReceiptOutcome> {
  return inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    await lockProviderMessage(uow.trx, receipt.provider, receipt.providerMessageId);
    const attempt = await findByProviderMessage(uow.trx, receipt.provider, receipt.providerMessageId);
    if (attempt === undefined) {
      await parkReceipt(uow.trx, receipt, now);
      return "parked";
    }
    return (await applyToAttempt(deps, uow, attempt, receipt, now)) ? "applied" : "unchanged";
  });
}

async function applyToAttempt(deps: OutcomeDeps, uow: UnitOfWork, attempt: AttemptRow, receipt: DeliveryReceipt, now: Date): Promise<boolean> {
  if (!isFinalReceipt(receipt.status)) return false;
  const error = receipt.status === "DELIVERED" ? undefined : { code: receipt.errorCode ?? receipt.status.toLowerCase(), reason: receipt.errorReason ?? "" };
  const ended = await markFinished(uow.trx, attempt.id, receipt.status, now, error);
  if (ended === undefined) return false;
  const common = { providerMessageId: receipt.providerMessageId, occurredAt: now };
  if (receipt.status === "DELIVERED") {
    const latencyMs = Math.max(0, receipt.occurredAt.getTime() - (ended.submitted_at ?? ended.created_at).getTime());
    await record(deps, uow, ended, { ...common, kind: "ATTEMPT_DELIVERED", status: "DELIVERED", latencyMs });
  } else {
    await record(deps, uow, ended, { ...common, kind: "ATTEMPT_FAILED", status: receipt.status, providerErrorCode: error!.code, providerErrorReason: error!.reason });
    await escalateNow(uow.trx, ended.verification_id, ended.step_index, now);
  }
  return true;
}

type AttemptEventFields = Omit<NewDeliveryEvent, "verificationId" | "attemptId" | "channel" | "routeId" | "traceId">;

async function record(deps: OutcomeDeps, uow: UnitOfWork, attempt: AttemptRow, fields: AttemptEventFields): Promise<void> {
  await recordEvent(
    uow,
    {
      verificationId: attempt.verification_id,
      attemptId: attempt.id,
      channel: attempt.channel as Channel,
      routeId: attempt.route_id,
      traceId: attempt.trace_id,
      ...fields,
    },
    deps.onOutboxWritten,
  );
}
