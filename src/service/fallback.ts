import { followingSteps, judgeStep } from "../domain/fallback.js";
import type { AttemptStatus } from "../domain/delivery-event.js";
import type { RenderOptions } from "../domain/message.js";
import type { PlannedStep } from "../domain/plan.js";
import { listAttempts } from "../store/repositories/attempts.js";
import { claimDuePlan, postponePlan, setPlanPosition } from "../store/repositories/verifications.js";
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

/**
 * Moves every due fallback plan on, one verification per transaction: the row
 * is locked first (`FOR UPDATE SKIP LOCKED`, the lifecycle's lock order) and its position updated in the same
 * transaction as the next attempt, so with any number of replicas each step
 * fires once. Returns how many plans it looked at.
 */
export async function advanceDuePlans(deps: ServiceDeps, batch: number, log: Logger = silentLogger): Promise<number> {
  let handled = 0;
  while (handled < batch) {
    let claimed: string | undefined;
    try {
      const moved = await inTransaction(deps.db, async (uow) => {
        const row = await claimDuePlan(uow.trx, deps.clock.now());
        claimed = row?.id;
        return row === undefined ? "none" : advancePlan(deps, uow, row);
      });
      if (moved === "none") break;
    } catch (error) {
      if (claimed === undefined) throw error;
      // One broken plan must not hold up the rest (they are claimed oldest first): look at it again later.
      log.error("fallback step failed; retrying later", { verificationId: claimed, ...errorFields(error) });
      await postponePlan(deps.db, claimed, new Date(deps.clock.now().getTime() + RETRY_BROKEN_PLAN_MS));
    }
    handled++;
  }
  return handled;
}

const RETRY_BROKEN_PLAN_MS = 5_000;

async function advancePlan(deps: ServiceDeps, uow: UnitOfWork, row: VerificationRow): Promise<PlanMove> {
  holdsVerification(uow, row);
  const now = deps.clock.now();
  const steps = row.plan as PlannedStep[];
  const attempts = await listAttempts(uow.trx, row.id);
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
