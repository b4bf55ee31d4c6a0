import type { Channel } from "../domain/channel.js";
import { NotFoundError, UnavailableError } from "../domain/errors.js";
import { lockDurationMs } from "../domain/limits.js";
import {
  outcomeBeforeCodeCheck,
  remainingAttempts,
  type VerificationCheckState,
  type VerificationStatus,
  type VerifyOutcome,
} from "../domain/verification.js";
import { latestReaching } from "../store/repositories/attempts.js";
import { approveCode, countWrongCode, readCodeCheck, type CheckedVerification, type CodeCandidate, type CodeCheckState } from "../store/repositories/code-checks.js";
import { outboxRow } from "../store/repositories/outbox.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import { inTransaction, retryConflicts } from "../store/transaction.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { eventRows, holdsVerification, recordEvent } from "./events.js";
import { cancelUnsentAttempts } from "./attempt-lifecycle.js";
import { otpMetrics } from "../telemetry/metrics.js";
import { ATTR, contextOf, inSpan } from "../telemetry/spans.js";

export interface VerifyOtpResult {
  readonly outcome: VerifyOutcome;
  readonly remainingAttempts: number;
  /** On approval: the attempt (and channel) whose message carried the code. */
  readonly attemptId?: string;
  readonly channel?: Channel;
  /** On approval: the code came with a later step than the first (the fallback rescued the verification). */
  readonly rescued?: boolean;
}

/** Reads of a verification that moved on before its check could be written, before UNAVAILABLE. */
const CHECK_TRIES = 5;

/** The verification changed between the read and the write: read again. */
class MovedOn extends Error {}

/**
 * Checks a code: one read of the verification, its attempts' code hashes and
 * its addresses' locks, then one conditional write — two round trips, the
 * write autocommitted. The write happens only if the verification is still as
 * read (approval: still open, and no event since; wrong code: still open), so of
 * any number of racing calls exactly one approves; a call that loses reads again
 * and answers from the new state. A check that ends the verification with more
 * than that write (an approval that stops unsent attempts, the last wrong code)
 * runs it in a transaction with the rest: BEGIN and COMMIT, two more.
 */
export async function verifyOtp(deps: ServiceDeps, caller: Caller, verificationId: string, code: string): Promise<VerifyOtpResult> {
  for (let tries = 1; ; tries++) {
    try {
      return await checkOnce(deps, caller, verificationId, code);
    } catch (error) {
      if (!(error instanceof MovedOn)) throw error;
      if (tries >= CHECK_TRIES) throw new UnavailableError("the verification kept changing during the check; retry");
    }
  }
}

async function checkOnce(deps: ServiceDeps, caller: Caller, verificationId: string, code: string): Promise<VerifyOtpResult> {
  const now = deps.clock.now();
  const state = await readCodeCheck(deps.db, verificationId, caller.id, now);
  if (state === undefined) throw new NotFoundError(`verification ${verificationId} not found`);
  // The check is a step of the verification's trace (linked to the caller's request).
  const span = { parent: contextOf(state.traceparent), linkActive: true, attributes: { [ATTR.verificationId]: verificationId } };
  return inSpan("otp.verify", span, async (active) => {
    const result = await decide(deps, state, code, now);
    const approvedBy = state.attempts.find((a) => a.id === result.attemptId);
    otpMetrics.verified(result.outcome, result.rescued === true, { channel: approvedBy?.channel, route: approvedBy?.route_id, country: state.country });
    active.setAttributes({ [ATTR.status]: result.outcome, ...(result.attemptId ? { [ATTR.attemptId]: result.attemptId } : {}), ...(result.channel ? { [ATTR.channel]: result.channel } : {}) });
    return result;
  });
}

async function decide(deps: ServiceDeps, state: CodeCheckState, code: string, now: Date): Promise<VerifyOtpResult> {
  const row = state.verification;
  const early = outcomeBeforeCodeCheck(checkState(row), now);
  if (early !== undefined) return { outcome: early, remainingAttempts: remainingAttempts(checkState(row)) };

  // The right code for a live verification approves even while its addresses are locked: a lock stops
  // further sends and guesses, so locking a victim out by guessing wrong on purpose gains an attacker nothing.
  const owner = codeOwner(deps, row, state.attempts, code);
  if (owner !== undefined) return approve(deps, state, now, owner.attempt);
  if (state.lockedUntil !== undefined) return { outcome: "MAX_ATTEMPTS", remainingAttempts: 0 };
  return countWrong(deps, row, now);
}

/**
 * The attempt whose code `code` is, if it is one of this verification's valid
 * codes: each attempt's own, for every attempt whose message may have gone out
 * (a canceled one's never left), valid until the verification ends — a user who
 * gets the SMS late can still use it. Attempts from before per-attempt codes
 * share the verification's code, and the latest one that reached the user is named.
 * Every candidate is compared, so the time taken does not tell which one matched.
 */
function codeOwner(deps: ServiceDeps, row: CheckedVerification, attempts: readonly CodeCandidate[], code: string): { attempt: CodeCandidate | undefined } | undefined {
  let owner: { attempt: CodeCandidate | undefined } | undefined;
  for (const attempt of attempts) {
    if (attempt.code_hash === null || attempt.status === "CANCELED") continue;
    if (deps.protector.matches(row.id, code, attempt.code_hash) && owner === undefined) owner = { attempt };
  }
  if (attempts.every((a) => a.code_hash === null) && deps.protector.matches(row.id, code, row.code_hash)) {
    owner = { attempt: latestReaching(attempts) };
  }
  return owner;
}

async function approve(deps: ServiceDeps, state: CodeCheckState, now: Date, attempt: CodeCandidate | undefined): Promise<VerifyOtpResult> {
  const row = state.verification;
  const verified = eventRows({
    verificationId: row.id,
    sequence: row.event_seq + 1,
    kind: "VERIFIED",
    ...(attempt ? { attemptId: attempt.id, channel: attempt.channel as Channel, routeId: attempt.route_id } : {}),
    traceId: row.trace_id,
    occurredAt: now,
  });
  const approval = {
    id: row.id,
    now,
    attemptId: attempt?.id ?? null,
    seenSequence: row.event_seq,
    guardKeys: row.guard_keys,
    event: verified.event,
    message: outboxRow(verified.outbox, now),
  };
  const approvedResult = (approved: CheckedVerification): VerifyOtpResult => ({
    outcome: "APPROVED",
    remainingAttempts: remainingAttempts(checkState(approved)),
    ...(attempt ? { attemptId: attempt.id, channel: attempt.channel as Channel, rescued: attempt.id !== state.attempts[0]?.id } : {}),
  });
  if (!state.attempts.some((a) => a.unsent)) {
    // The usual approval (the code came in a message that went out): nothing to stop, so the one statement runs
    // alone. (An attempt queued after the read is stopped by its worker, which sends only for a pending verification.)
    const approved = await retryConflicts(() => approveCode(deps.db, approval));
    if (approved === undefined) throw new MovedOn();
    deps.onOutboxWritten([verified.outbox]);
    return approvedResult(approved);
  }
  return inTransaction(deps.db, async (uow) => {
    const approved = await approveCode(uow.trx, approval);
    if (approved === undefined) throw new MovedOn();
    holdsVerification(uow, approved);
    // The plan stops here: attempts whose provider call has not started are not sent.
    await cancelUnsentAttempts(uow, row.id, now);
    uow.afterCommit(() => deps.onOutboxWritten([verified.outbox]));
    return approvedResult(approved);
  });
}

async function countWrong(deps: ServiceDeps, row: CheckedVerification, now: Date): Promise<VerifyOtpResult> {
  const limits = deps.limits;
  const wrong = {
    id: row.id,
    now,
    guardKeys: row.guard_keys,
    failureLock: limits.destinationFailureLock,
    lockDurationsMs: Array.from({ length: 31 }, (_, lockCount) => lockDurationMs(limits, lockCount)),
  };
  const wrongCode = (updated: VerificationRow): VerifyOtpResult => ({ outcome: "WRONG_CODE", remainingAttempts: remainingAttempts(checkState(updated)) });
  if (row.failed_attempts + 1 < row.max_attempts) {
    // Not the last try as read: counted by the one statement alone, which checks that it still is not (a racing
    // wrong code may have taken a try since), so the last try is always counted below, with its event.
    const updated = await retryConflicts(() => countWrongCode(deps.db, { onlyIfNotLast: true, ...wrong }));
    if (updated === undefined) throw new MovedOn();
    return wrongCode(updated);
  }
  return inTransaction(deps.db, async (uow) => {
    const updated = await countWrongCode(uow.trx, { onlyIfNotLast: false, ...wrong });
    if (updated === undefined) throw new MovedOn();
    if (updated.status === "MAX_ATTEMPTS") {
      // Out of tries: the plan stops, as on approval, and watchers are told.
      holdsVerification(uow, updated);
      await cancelUnsentAttempts(uow, row.id, now);
      await recordEvent(uow, { verificationId: row.id, kind: "MAX_ATTEMPTS", traceId: row.trace_id, occurredAt: now }, deps.onOutboxWritten);
    }
    return wrongCode(updated);
  });
}

function checkState(row: Pick<VerificationRow, "status" | "expires_at" | "failed_attempts" | "max_attempts">): VerificationCheckState {
  return {
    status: row.status as VerificationStatus,
    expiresAt: row.expires_at,
    failedAttempts: row.failed_attempts,
    maxAttempts: row.max_attempts,
  };
}
