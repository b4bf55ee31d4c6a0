/**
 * The attempt lifecycle: every change to an attempt's status goes through here
 * (queuing is in queue-attempt.ts, which runs inside a transaction that holds
 * the verification already).
 *
 *   QUEUED ──claim──▶ QUEUED + intent ──provider accepted──▶ SUBMITTED ──receipt──▶ DELIVERED | UNDELIVERED | EXPIRED
 *     │                    │                                     └──worker gave up──▶ FAILED
 *     │                    └──failed for certain──▶ QUEUED (intent cleared) | REJECTED | FAILED
 *     └──verification ended or moved past the step, before any call──▶ CANCELED (refunded)
 *
 * An attempt whose provider call has started (intent set) is never canceled:
 * its message may be out, so it stays charged and records its provider id when
 * the call returns. An attempt is refunded only if no provider accepted it and
 * no call that may have reached one is out.
 *
 * Lock order. Every transaction that writes a verification or its attempts
 * takes its locks in this order, so no two of them can wait on each other:
 *
 *   1. the provider message id (advisory lock; submissions, and receipts that
 *      did not find their attempt without it)
 *   2. the verification row (`lockVerification`, or the UPDATE / SKIP LOCKED
 *      claim that is the transaction's first write to it; the worker's
 *      one-statement claim locks it before it touches the attempt)
 *   3. its attempts, and the caller's balance row (debits, refunds) — in either
 *      order: only the holder of a verification's lock writes its attempts, so
 *      no one holding them can be waiting for the balance
 *   4. the destination guard (wrong-code counting)
 *
 * The fallback scheduler and the expiry sweep hold several verifications at
 * once, but claim them with SKIP LOCKED (they never wait for one) and then
 * take their callers' balance rows in caller order.
 *
 * Rate-limit windows are counted by SendOtp in a statement of their own,
 * before its transaction; its idempotency key is taken before it inserts the
 * verification; nothing takes either later. The receipt poller's
 * claim locks attempts alone, but with SKIP LOCKED and without waiting on
 * anything else, so it cannot close a cycle.
 */
import type { Channel } from "../domain/channel.js";
import type { Clock } from "../domain/ports.js";
import { scrubProviderCode, scrubProviderText } from "../domain/provider-text.js";
import { isFinalReceipt, type DeliveryReceipt } from "../domain/receipt.js";
import type { Db } from "../store/database.js";
import { cancelUnstarted, clearSubmitIntent, lockByProviderMessage, lockQueuedAttempt, markFinished, markSubmitStarted, markSubmitted, startFirstSubmit } from "../store/repositories/attempts.js";
import { debitsOf, refundAttempt } from "../store/repositories/ledger.js";
import { lockMessageAndVerification, lockProviderMessage, parkReceipt, receiptsFromParked } from "../store/repositories/parked-receipts.js";
import type { OnOutboxWritten } from "../store/repositories/outbox.js";
import { escalateNow, lockVerification } from "../store/repositories/verifications.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import { inTransaction, retryConflicts, type UnitOfWork } from "../store/transaction.js";
import { decideSend, type SendDecision } from "../domain/send-intent.js";
import { eventAppended, holdsVerification, prepareEvent, type NewDeliveryEvent } from "./events.js";
import { otpMetrics } from "../telemetry/metrics.js";
import { ATTR, contextOf, inSpan } from "../telemetry/spans.js";

/** What recording an attempt's outcome needs: the store, the time, and a nudge for the outbox relay. */
export interface OutcomeDeps {
  readonly db: Db;
  readonly clock: Clock;
  readonly onOutboxWritten: OnOutboxWritten;
}

export type FailureStatus = "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED";

export interface Submission {
  readonly providerMessageId: string;
  /** The provider reported delivery in its answer (sandbox providers). */
  readonly delivered: boolean;
  /** When the receipt poller should first ask about it; null when receipts are pushed. */
  readonly firstPollAt: Date | null;
}

/** What a worker may do with a dispatched attempt. */
export type SendClaim =
  /** Call the provider; `repeat`: an earlier call may have reached it, and it de-duplicates by attempt id. */
  | { readonly kind: "send"; readonly repeat: boolean; readonly attempt: AttemptRow }
  | Exclude<SendDecision, { kind: "send" }>
  /** Not QUEUED any more (sent, ended, or canceled): nothing to do. */
  | { readonly kind: "done" }
  /** Its verification ended or moved past its step before any call: canceled and refunded. */
  | { readonly kind: "superseded" };

/** The provider call as the worker sees it: whether an earlier call may be out, and whether a repeat is harmless. */
export interface ProviderCallTerms {
  readonly timeoutMs: number;
  readonly idempotent: boolean;
}

/**
 * Decides, under the verification's lock, whether a worker may call the
 * provider for an attempt, and if so commits the intent before the call.
 * An attempt its verification no longer wants (ended, or a later step is
 * current) is never sent: canceled if no call started, else left to the call
 * already made. A claim to send carries the attempt as stored (the worker
 * need not read it first).
 */
export async function claimSend(deps: OutcomeDeps, verificationId: string, attemptId: string, terms: ProviderCallTerms): Promise<SendClaim> {
  // The usual case (a first delivery of a wanted attempt) in one statement instead of a transaction of five;
  // everything else (a call already started, a verification ended or moved on) is decided below.
  const started = await retryConflicts(() => startFirstSubmit(deps.db, verificationId, attemptId, deps.clock.now()));
  if (started !== undefined) return { kind: "send", repeat: false, attempt: started };
  return inTransaction(deps.db, async (uow) => {
    const verification = await lockVerification(uow.trx, verificationId);
    const attempt = await lockQueuedAttempt(uow.trx, attemptId);
    if (verification === undefined || attempt === undefined || attempt.verification_id !== verificationId) return { kind: "done" };
    const now = deps.clock.now();
    const wanted = verification.status === "PENDING" && verification.current_step === attempt.step_index;
    if (!wanted) {
      if (attempt.submit_started_at === null) {
        // This attempt only: a later step's attempt of the same verification is the one that counts now.
        await cancelUnsentAttempts(uow, verificationId, now, attemptId);
        return { kind: "superseded" };
      }
      // An earlier call may have sent it: never a new call, not even an idempotent repeat.
      const decision = decideSend(attempt.submit_started_at, now, terms.timeoutMs, false);
      return decision.kind === "send" ? { kind: "give-up" } : decision;
    }
    const decision = decideSend(attempt.submit_started_at, now, terms.timeoutMs, terms.idempotent);
    if (decision.kind !== "send") return decision;
    await markSubmitStarted(uow.trx, attemptId, now);
    return { kind: "send", repeat: attempt.submit_started_at !== null, attempt };
  });
}

/**
 * Cancels a verification's attempts that no provider call has started (or only
 * `onlyAttemptId`), and gives back what they were charged. The caller holds the verification's lock.
 */
export async function cancelUnsentAttempts(uow: UnitOfWork, verificationId: string, now: Date, onlyAttemptId?: string): Promise<void> {
  // One verification's attempts: one caller, one balance row, no order to keep.
  for (const attempt of await cancelUnstarted(uow.trx, verificationId, now, onlyAttemptId)) await refundAttempt(uow.trx, attempt.id, now);
}

/**
 * Gives back what attempts canceled before any provider call were charged. Their
 * callers' balance rows are taken in caller order (bytewise), as every writer of
 * several balances takes them: a batch of several callers' verifications cannot
 * wait on another batch in a cycle.
 */
export async function refundCanceled(uow: UnitOfWork, attemptIds: readonly string[], now: Date): Promise<void> {
  if (attemptIds.length <= 1) {
    for (const id of attemptIds) await refundAttempt(uow.trx, id, now);
    return;
  }
  const debits = await debitsOf(uow.trx, attemptIds);
  const byCaller = [...debits].sort(([, a], [, b]) => (a.callerId < b.callerId ? -1 : a.callerId > b.callerId ? 1 : 0));
  for (const [attemptId] of byCaller) await refundAttempt(uow.trx, attemptId, now);
}

/**
 * Records that the provider accepted an attempt (ATTEMPT_SUBMITTED with its
 * message id and price), then applies any receipt that arrived for that id
 * before this moment. Nothing happens if the attempt is no longer QUEUED.
 */
export async function recordSubmitted(deps: OutcomeDeps, attempt: AttemptRow, submission: Submission): Promise<void> {
  await inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    const verification = await lockMessageAndVerification(uow.trx, attempt.provider, submission.providerMessageId, attempt.verification_id);
    // Gone only when retention pruned it, and its attempts with it: nothing left to record.
    if (verification === undefined) return;
    holdsVerification(uow, verification);
    // The event is built before the write that appends it (one statement), from the attempt's fixed fields.
    const event = await prepareEvent(uow, {
      kind: "ATTEMPT_SUBMITTED",
      status: "SUBMITTED",
      providerMessageId: submission.providerMessageId,
      currency: attempt.currency,
      priceMicros: attempt.price_micros,
      occurredAt: now,
      ...attemptEventFields(attempt),
    });
    const written = await markSubmitted(uow.trx, attempt.id, submission.providerMessageId, now, submission.firstPollAt, { provider: attempt.provider, ...event.record });
    if (written === undefined) return;
    eventAppended(uow, event, deps.onOutboxWritten);
    const submitted = written.attempt;
    const early: DeliveryReceipt[] = submission.delivered
      ? [{ provider: submitted.provider, providerMessageId: submission.providerMessageId, status: "DELIVERED", occurredAt: now }]
      : [];
    early.push(...receiptsFromParked(written.parked));
    for (const receipt of early) await applyToAttempt(deps, uow, submitted, receipt, now, verification.current_step);
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
    // Gone only when retention pruned it, and its attempts with it: nothing left to record.
    if ((await holdVerification(uow, attempt.verification_id)) === undefined) return;
    const fields: AttemptEventFields = { kind: "ATTEMPT_FAILED", status, providerErrorCode: error.code, providerErrorReason: error.reason, occurredAt: now };
    const ended = await finish(deps, uow, attempt, status, now, { error }, fields);
    if (ended === undefined) return;
    // Refunded only when no provider can have it: never accepted, and no call left that may have reached one
    // (a call that failed for certain clears its intent first; an outcome_unknown one keeps it).
    if (ended.submitted_at === null && ended.submit_started_at === null) await refundAttempt(uow.trx, ended.id, now);
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
    // Usually the worker recorded the id well before its receipt came: found at once, without the id's lock, which
    // only orders a receipt against that record. Else the lock, then a fresh look: the record committed before it
    // (found now), or it waits for this transaction and takes the receipt parked here.
    let target = await lockByProviderMessage(uow.trx, receipt.provider, receipt.providerMessageId);
    if (target === undefined) {
      await lockProviderMessage(uow.trx, receipt.provider, receipt.providerMessageId);
      target = await lockByProviderMessage(uow.trx, receipt.provider, receipt.providerMessageId);
    }
    // Not recorded yet; or pruned by retention with its verification, and the parked sweep drops the receipt later.
    if (target === undefined) {
      await parkReceipt(uow.trx, receipt, now);
      return "parked";
    }
    holdsVerification(uow, { id: target.attempt.verification_id, event_seq: target.eventSeq });
    return (await applyToAttempt(deps, uow, target.attempt, receipt, now, target.currentStep)) ? "applied" : "unchanged";
  });
}

/**
 * The receipt's step of the verification's trace: whichever replica and
 * however late it arrives, a child of the context stored with the attempt,
 * linked to the request (webhook or poll) that brought it.
 */
function applyToAttempt(
  deps: OutcomeDeps,
  uow: UnitOfWork,
  attempt: AttemptRow,
  receipt: DeliveryReceipt,
  now: Date,
  currentStep: number,
): Promise<boolean> {
  const attributes = {
    [ATTR.verificationId]: attempt.verification_id,
    [ATTR.attemptId]: attempt.id,
    [ATTR.channel]: attempt.channel,
    [ATTR.routeId]: attempt.route_id,
    [ATTR.provider]: receipt.provider,
    [ATTR.providerMessageId]: receipt.providerMessageId,
    [ATTR.status]: receipt.status,
  };
  return inSpan("otp.receipt", { parent: contextOf(attempt.traceparent), attributes, linkActive: true }, () => applyFinalReceipt(deps, uow, attempt, receipt, now, currentStep));
}

/** `currentStep`: the verification's, under its lock; past this attempt's step, a delivery came after the plan moved on. */
async function applyFinalReceipt(
  deps: OutcomeDeps,
  uow: UnitOfWork,
  attempt: AttemptRow,
  receipt: DeliveryReceipt,
  now: Date,
  currentStep: number,
): Promise<boolean> {
  if (!isFinalReceipt(receipt.status)) return false;
  // A receipt's text comes from the provider: only its scrubbed form is kept.
  const error =
    receipt.status === "DELIVERED"
      ? undefined
      : { code: scrubProviderCode(receipt.errorCode ?? receipt.status.toLowerCase()), reason: scrubProviderText(receipt.errorReason ?? "") };
  // From the receipt's own time: how long the provider took, whenever the receipt reached us.
  const latencyMs = Math.max(0, receipt.occurredAt.getTime() - (attempt.submitted_at ?? attempt.created_at).getTime());
  const common = { providerMessageId: receipt.providerMessageId, occurredAt: now };
  const fields: AttemptEventFields =
    error === undefined
      ? { kind: "ATTEMPT_DELIVERED", status: "DELIVERED", latencyMs, ...common }
      : { kind: "ATTEMPT_FAILED", status: receipt.status, providerErrorCode: error.code, providerErrorReason: error.reason, ...common };
  const ended = await finish(deps, uow, attempt, receipt.status, now, error === undefined ? { latencyMs } : { error }, fields);
  if (ended === undefined) return false;
  const late = currentStep > ended.step_index;
  uow.afterCommit(() => otpMetrics.receipt({ channel: ended.channel, route: ended.route_id }, receipt.status, latencyMs, late));
  if (error !== undefined) await escalateNow(uow.trx, ended.verification_id, ended.step_index, now);
  return true;
}

type AttemptEventFields = Omit<NewDeliveryEvent, "verificationId" | "attemptId" | "channel" | "routeId" | "traceId">;

/** Ends an attempt with its final status and appends that status's event, in one write; undefined if it had already ended. */
async function finish(
  deps: OutcomeDeps,
  uow: UnitOfWork,
  attempt: AttemptRow,
  status: Parameters<typeof markFinished>[2],
  now: Date,
  outcome: Parameters<typeof markFinished>[4],
  fields: AttemptEventFields,
): Promise<AttemptRow | undefined> {
  // Built from the attempt's fixed fields before the write, as a submission's event is.
  const event = await prepareEvent(uow, { ...attemptEventFields(attempt), ...fields });
  const ended = await markFinished(uow.trx, attempt.id, status, now, outcome, event.record);
  if (ended !== undefined) eventAppended(uow, event, deps.onOutboxWritten);
  return ended;
}

/** What every event of an attempt says of it. */
function attemptEventFields(attempt: AttemptRow): Pick<NewDeliveryEvent, "verificationId" | "attemptId" | "channel" | "routeId" | "traceId"> {
  return { verificationId: attempt.verification_id, attemptId: attempt.id, channel: attempt.channel as Channel, routeId: attempt.route_id, traceId: attempt.trace_id };
}

/** Locks a verification (the lock order's second lock) and notes its row, so its events are numbered without reading it again. */
async function holdVerification(uow: UnitOfWork, verificationId: string): Promise<VerificationRow | undefined> {
  const row = await lockVerification(uow.trx, verificationId);
  if (row !== undefined) holdsVerification(uow, row);
  return row;
}

/** Forgets a claim's intent after a call that certainly did not reach the provider, so a retry may send. */
export async function clearSendIntent(deps: OutcomeDeps, attemptId: string): Promise<void> {
  await clearSubmitIntent(deps.db, attemptId);
}
