import type { Channel } from "../domain/channel.js";
import { NotFoundError } from "../domain/errors.js";
import {
  outcomeBeforeCodeCheck,
  remainingAttempts,
  type VerificationCheckState,
  type VerificationStatus,
  type VerifyOutcome,
} from "../domain/verification.js";
import { clearWrongGuesses, countWrongGuess, lockedUntil } from "./address-guards.js";
import { latestReaching, listAttempts } from "../store/repositories/attempts.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import { approveIfPending, findVerification, recordWrongCode } from "../store/repositories/verifications.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { holdsVerification, recordEvent } from "./events.js";
import { cancelUnsentAttempts } from "./attempt-lifecycle.js";

export interface VerifyOtpResult {
  readonly outcome: VerifyOutcome;
  readonly remainingAttempts: number;
  /** On approval: the attempt (and channel) whose message carried the code. */
  readonly attemptId?: string;
  readonly channel?: Channel;
}

/**
 * Checks a code. Approval and wrong-code counting are conditional updates on
 * the verification row, so of any number of racing calls exactly one approves;
 * that update is the transaction's first lock, as the lifecycle's lock order asks.
 */
export async function verifyOtp(deps: ServiceDeps, caller: Caller, verificationId: string, code: string): Promise<VerifyOtpResult> {
  return inTransaction(deps.db, async (uow) => {
    const now = deps.clock.now();
    const row = await findVerification(uow.trx, verificationId, caller.id);
    if (row === undefined) throw new NotFoundError(`verification ${verificationId} not found`);

    const early = outcomeBeforeCodeCheck(checkState(row), now);
    if (early !== undefined) return { outcome: early, remainingAttempts: remainingAttempts(checkState(row)) };

    // The right code for a live verification approves even while its addresses are locked: a lock stops
    // further sends and guesses, so locking a victim out by guessing wrong on purpose gains an attacker nothing.
    const owner = codeOwner(deps, row, await listAttempts(uow.trx, row.id), code);
    if (owner !== undefined) return approve(deps, uow, row, now, owner.attempt);
    if ((await lockedUntil(uow.trx, row.guard_keys, now)) !== undefined) return { outcome: "MAX_ATTEMPTS", remainingAttempts: 0 };
    return countWrongCode(deps, uow, row, now);
  });
}

/**
 * The attempt whose code `code` is, if it is one of this verification's valid
 * codes: each attempt's own, for every attempt whose message may have gone out
 * (a canceled one's never left), valid until the verification ends — a user who
 * gets the SMS late can still use it. Attempts from before per-attempt codes
 * share the verification's code, and the latest one that reached the user is named.
 * Every candidate is compared, so the time taken does not tell which one matched.
 */
function codeOwner(deps: ServiceDeps, row: VerificationRow, attempts: readonly AttemptRow[], code: string): { attempt: AttemptRow | undefined } | undefined {
  let owner: { attempt: AttemptRow | undefined } | undefined;
  for (const attempt of attempts) {
    if (attempt.code_hash === null || attempt.status === "CANCELED") continue;
    if (deps.protector.matches(row.id, code, attempt.code_hash) && owner === undefined) owner = { attempt };
  }
  if (attempts.every((a) => a.code_hash === null) && deps.protector.matches(row.id, code, row.code_hash)) {
    owner = { attempt: latestReaching(attempts) };
  }
  return owner;
}

async function approve(deps: ServiceDeps, uow: UnitOfWork, row: VerificationRow, now: Date, attempt: AttemptRow | undefined): Promise<VerifyOtpResult> {
  const approved = await approveIfPending(uow.trx, row.id, now, attempt?.id ?? null);
  if (approved === undefined) return reread(uow, row, now);
  holdsVerification(uow, approved);
  // The plan stops here: attempts whose provider call has not started are not sent.
  await cancelUnsentAttempts(uow, row.id, now);
  await clearWrongGuesses(uow.trx, row.guard_keys);
  await recordEvent(
    uow,
    {
      verificationId: row.id,
      kind: "VERIFIED",
      ...(attempt ? { attemptId: attempt.id, channel: attempt.channel as Channel, routeId: attempt.route_id } : {}),
      traceId: row.trace_id,
      occurredAt: now,
    },
    deps.onOutboxWritten,
  );
  return {
    outcome: "APPROVED",
    remainingAttempts: remainingAttempts(checkState(approved)),
    ...(attempt ? { attemptId: attempt.id, channel: attempt.channel as Channel } : {}),
  };
}

async function countWrongCode(deps: ServiceDeps, uow: UnitOfWork, row: VerificationRow, now: Date): Promise<VerifyOtpResult> {
  const updated = await recordWrongCode(uow.trx, row.id, now);
  if (updated === undefined) return reread(uow, row, now);
  holdsVerification(uow, updated);
  if (updated.status === "MAX_ATTEMPTS") {
    // Out of tries: the plan stops, as on approval, and watchers are told.
    await cancelUnsentAttempts(uow, row.id, now);
    await recordEvent(uow, { verificationId: row.id, kind: "MAX_ATTEMPTS", traceId: row.trace_id, occurredAt: now }, deps.onOutboxWritten);
  }
  await countWrongGuess(uow.trx, deps.limits, row.guard_keys, now);
  return { outcome: "WRONG_CODE", remainingAttempts: remainingAttempts(checkState(updated)) };
}

/** A racing call changed the row first: answer from its state now. */
async function reread(uow: UnitOfWork, row: VerificationRow, now: Date): Promise<VerifyOtpResult> {
  const current = (await findVerification(uow.trx, row.id, row.caller_id)) ?? row;
  const state = checkState(current);
  return { outcome: outcomeBeforeCodeCheck(state, now) ?? "WRONG_CODE", remainingAttempts: remainingAttempts(state) };
}

function checkState(row: VerificationRow): VerificationCheckState {
  return {
    status: row.status as VerificationStatus,
    expiresAt: row.expires_at,
    failedAttempts: row.failed_attempts,
    maxAttempts: row.max_attempts,
  };
}
