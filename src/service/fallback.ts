import { followingSteps, judgeStep } from "../domain/fallback.js";
import type { AttemptStatus } from "../domain/delivery-event.js";
import type { RenderOptions } from "../domain/message.js";
import type { PlannedStep } from "../domain/plan.js";
import { listAttempts, listAttemptsOf } from "../store/repositories/attempts.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import { claimDuePlan, claimDuePlans, postponePlan, setPlanPosition } from "../store/repositories/verifications.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import { errorFields, silentLogger, type Logger } from "../telemetry/logger.js";
import { continueOrStartTrace } from "../telemetry/trace-context.js";
import type { ServiceDeps } from "./deps.js";
import { guardKeysFor, lockedUntil } from "./address-guards.js";
import { cancelUnsentAttempts } from "./attempt-lifecycle.js";
import { holdsVerification, recordEvent } from "./events.js";
import { chargeStep, newAttemptCode, writeQueuedAttempt } from "./queue-attempt.js";

/** Where one verification's plan went when the scheduler looked at it. */
export type PlanMove = "waiting" | "escalated" | "finished" | "none";

/** Plans claimed and moved on in one transaction. */
const PLANS_PER_TRANSACTION = 50;
/** Transactions of the scheduler in flight at once (each takes one pooled connection). */
const SCHEDULER_LANES = 4;

/**
 * Moves due fallback plans on, up to `batch` of them: several transactions
 * at once, each claiming up to PLANS_PER_TRANSACTION due verifications
 * (`FOR UPDATE SKIP LOCKED`, the lifecycle's lock order, so lanes and
 * replicas never take the same plan) and reading their attempts in one
 * statement. Each plan's position is updated in the same transaction as its
 * next attempt, so with any number of replicas each step fires once. A
 * transaction that fails is taken apart: its plans are tried one per
 * transaction, and one that still fails is looked at again later, so one
 * broken plan does not hold up the rest. Returns how many plans it looked at.
 */
export async function advanceDuePlans(deps: ServiceDeps, batch: number, log: Logger = silentLogger): Promise<number> {
  let budget = batch;
  const lane = async (): Promise<number> => {
    let handled = 0;
    while (budget > 0) {
      const size = Math.min(PLANS_PER_TRANSACTION, budget);
      budget -= size;
      const claimed = await advanceClaimed(deps, size, log);
      budget += size - claimed;
      handled += claimed;
      if (claimed < size) break;
    }
    return handled;
  };
  const lanes = Math.max(1, Math.min(SCHEDULER_LANES, Math.ceil(batch / PLANS_PER_TRANSACTION)));
  const handled = await Promise.all(Array.from({ length: lanes }, lane));
  return handled.reduce((a, b) => a + b, 0);
}

/** Claims up to `size` due plans and moves them on in one transaction; returns how many it claimed. */
async function advanceClaimed(deps: ServiceDeps, size: number, log: Logger): Promise<number> {
  let claimed: string[] = [];
  try {
    return await inTransaction(deps.db, async (uow) => {
      const rows = await claimDuePlans(uow.trx, deps.clock.now(), size);
      claimed = rows.map((r) => r.id);
      const attempts = groupBy(await listAttemptsOf(uow.trx, claimed), (a) => a.verification_id);
      // In caller order: the balance rows the plans charge or refund are then locked in one order by every lane.
      const byCaller = [...rows].sort((a, b) => (a.caller_id < b.caller_id ? -1 : a.caller_id > b.caller_id ? 1 : 0));
      for (const row of byCaller) await advancePlan(deps, uow, row, attempts.get(row.id) ?? []);
      return rows.length;
    });
  } catch (error) {
    if (claimed.length === 0) throw error;
    for (const id of claimed) await advanceAlone(deps, id, log);
    return claimed.length;
  }
}

/** One plan in its own transaction, after a batch holding it failed; a plan that fails alone is looked at again later. */
async function advanceAlone(deps: ServiceDeps, id: string, log: Logger): Promise<void> {
  try {
    await inTransaction(deps.db, async (uow) => {
      const row = await claimDuePlan(uow.trx, id, deps.clock.now());
      if (row !== undefined) await advancePlan(deps, uow, row, await listAttempts(uow.trx, id));
    });
  } catch (error) {
    log.error("fallback step failed; retrying later", { verificationId: id, ...errorFields(error) });
    await postponePlan(deps.db, id, new Date(deps.clock.now().getTime() + RETRY_BROKEN_PLAN_MS));
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group === undefined) groups.set(key(item), [item]);
    else group.push(item);
  }
  return groups;
}

const RETRY_BROKEN_PLAN_MS = 5_000;

/** Moves one claimed plan on; `attempts` are its attempts in step order. */
async function advancePlan(deps: ServiceDeps, uow: UnitOfWork, row: VerificationRow, attempts: readonly AttemptRow[]): Promise<PlanMove> {
  holdsVerification(uow, row);
  const now = deps.clock.now();
  const steps = row.plan as PlannedStep[];
  const current = attempts.find((a) => a.step_index === row.current_step);
  const step = steps.find((s) => s.index === row.current_step);
  if (current === undefined || step === undefined) {
    await setPlanPosition(uow.trx, row.id, row.current_step, null);
    return "finished";
  }
  const verdict = judgeStep(step, { status: current.status as AttemptStatus, createdAt: current.created_at, providerErrorCode: current.provider_error_code }, now);
  if (verdict.kind === "wait") {
    await setPlanPosition(uow.trx, row.id, row.current_step, verdict.until);
    return "waiting";
  }
  if (verdict.kind === "done") {
    await setPlanPosition(uow.trx, row.id, row.current_step, null);
    return "finished";
  }

  const skipped: string[] = [];
  const earlier = attempts.map((a) => ({ channel: a.channel as PlannedStep["channel"], createdAt: a.created_at }));
  for (const candidate of followingSteps(steps, row.current_step, earlier, now)) {
    if (candidate.skip) {
      skipped.push(candidate.skip);
      continue;
    }
    const next = candidate.step;
    // Checked again now: the address may have been locked since the plan was made.
    if ((await lockedUntil(uow.trx, guardKeysFor(deps.protector, row.caller_id, [next.address]), now)) !== undefined) {
      skipped.push(`${next.channel} skipped: its address is locked after repeated wrong codes`);
      continue;
    }
    const attemptId = deps.ids.next("att");
    const unpaid = await chargeStep(uow, row.caller_id, attemptId, next, now);
    if (unpaid !== undefined) {
      skipped.push(`${next.channel} skipped: ${unpaid}`);
      continue;
    }
    // The earlier steps are superseded: an attempt of theirs that no worker has started is never sent
    // (a call in flight completes and is recorded). Its refund follows the next step's debit.
    await cancelUnsentAttempts(uow, row.id, now);
    const trace = continueOrStartTrace(current.traceparent, deps.random);
    const reason = [verdict.reason, ...skipped, `next: ${next.channel}`].join("; ");
    await recordEvent(
      uow,
      { verificationId: row.id, kind: "FALLBACK_TRIGGERED", attemptId: current.id, channel: next.channel, routeId: next.routeId, reason, traceId: trace.traceId, occurredAt: now },
      deps.onOutboxWritten,
    );
    await writeQueuedAttempt(deps, uow, attemptId, {
      verificationId: row.id,
      callerId: row.caller_id,
      step: next,
      code: newAttemptCode(deps, row.id, row.code_length),
      render: row.render as RenderOptions,
      expiresAt: row.expires_at,
      trace,
      now,
    });
    await setPlanPosition(uow.trx, row.id, next.index, new Date(now.getTime() + next.deadlineMs));
    return "escalated";
  }
  // Nothing left to try: say so once, with every reason, and stop looking.
  await recordEvent(
    uow,
    { verificationId: row.id, kind: "FALLBACK_TRIGGERED", attemptId: current.id, reason: [verdict.reason, ...skipped, "no step left"].join("; "), traceId: row.trace_id, occurredAt: now },
    deps.onOutboxWritten,
  );
  await setPlanPosition(uow.trx, row.id, row.current_step, null);
  return "finished";
}
