import { distrustedSends } from "../domain/conversion.js";
import { followingSteps, judgeStep, type DistrustedReceipt, type EscalationCause, type StepVerdict } from "../domain/fallback.js";
import type { AttemptStatus, DeliveryEvent } from "../domain/delivery-event.js";
import type { RenderOptions } from "../domain/message.js";
import type { PlannedStep } from "../domain/plan.js";
import { spendDay } from "../domain/spend-cap.js";
import { listAttemptsOf } from "../store/repositories/attempts.js";
import { lockedGuardKeys } from "../store/repositories/destination-guards.js";
import { debitsOf, lockBalances } from "../store/repositories/ledger.js";
import { outboxRow, type OutboxMessage } from "../store/repositories/outbox.js";
import { writePlanMoves, type PlanPosition } from "../store/repositories/plan-moves.js";
import { lockSpend } from "../store/repositories/spend-counters.js";
import { claimDuePlan, claimDuePlans, postponePlan } from "../store/repositories/verifications.js";
import type { AttemptRow, NewAttemptRow } from "../store/tables/attempts.js";
import type { NewDeliveryEventRow } from "../store/tables/delivery-events.js";
import type { VerificationRow } from "../store/tables/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import { errorFields, silentLogger, type Logger } from "../telemetry/logger.js";
import { otpMetrics } from "../telemetry/metrics.js";
import { ATTR, markSpan } from "../telemetry/spans.js";
import { guardKeysFor } from "./address-guards.js";
import { BalanceBook } from "./balance-book.js";
import { SpendBook } from "./spend-book.js";
import type { ServiceDeps } from "./deps.js";
import { eventRows, type NewDeliveryEvent } from "./events.js";
import { newAttemptCode, queuedAttempt, unpaidReason } from "./queue-attempt.js";

/**
 * Plans claimed and moved on in one transaction. 100 in 2 lanes drained a
 * backlog 3–7 % faster than 50 in 4, at the same lateness, and leaves two more
 * of the pool's connections to the API meanwhile (BENCHMARKS.md (27)).
 */
const PLANS_PER_TRANSACTION = 100;
/** Transactions of the scheduler in flight at once (each takes one pooled connection). */
const SCHEDULER_LANES = 2;

/**
 * Moves due fallback plans on, up to `batch` of them: several transactions
 * at once, each claiming up to PLANS_PER_TRANSACTION due verifications
 * (`FOR UPDATE SKIP LOCKED`, the lifecycle's lock order, so lanes and
 * replicas never take the same plan) and moving them on together
 * (`advancePlans`). Each plan's position is updated in the same transaction
 * as its next attempt, so with any number of replicas each step fires once. A
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
      await advancePlans(deps, uow, rows);
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
      if (row !== undefined) await advancePlans(deps, uow, [row]);
    });
  } catch (error) {
    log.error("fallback step failed; retrying later", { verificationId: id, ...errorFields(error) });
    await postponePlan(deps.db, id, new Date(deps.clock.now().getTime() + RETRY_BROKEN_PLAN_MS));
  }
}

const RETRY_BROKEN_PLAN_MS = 5_000;

/** A claimed plan, its attempts in step order, and what its current step's outcome calls for. */
interface PlanLook {
  readonly row: VerificationRow;
  readonly steps: readonly PlannedStep[];
  readonly attempts: readonly AttemptRow[];
  readonly current: AttemptRow | undefined;
  /** Undefined when the plan has no current step or attempt to judge (it is finished). */
  readonly verdict: StepVerdict | undefined;
}

/**
 * Moves claimed (locked) plans on: what the moves depend on is read in at
 * most five statements whatever the batch's size (the plans' attempts, the
 * locks on the addresses they may fall back to, the balances of metered
 * callers, the debits of attempts a move would cancel, capped callers' spend
 * today), each plan's move is decided in memory, and every write is one
 * statement. Plans are decided in caller order, each seeing the balance and
 * spend the ones before it left, as if each had its own transaction.
 */
async function advancePlans(deps: ServiceDeps, uow: UnitOfWork, rows: readonly VerificationRow[]): Promise<void> {
  if (rows.length === 0) return;
  const now = deps.clock.now();
  const attemptsOf = groupBy(await listAttemptsOf(uow.trx, rows.map((r) => r.id)), (a) => a.verification_id);
  const looks = rows.map((row) => lookAt(deps, row, attemptsOf.get(row.id) ?? [], now));
  const escalating = looks.filter((l) => l.verdict?.kind === "escalate");

  // Checked again now: an address may have been locked since its plan was made.
  const candidateKeys = escalating.flatMap((l) =>
    guardKeysFor(
      deps.protector,
      l.row.caller_id,
      l.steps.filter((s) => s.index > l.row.current_step).map((s) => s.address),
    ),
  );
  const lockedKeys = await lockedGuardKeys(uow.trx, candidateKeys, now);
  const balances = await lockBalances(uow.trx, escalating.map((l) => l.row.caller_id));
  const unsent = escalating.filter((l) => balances.has(l.row.caller_id)).flatMap((l) => unsentAttempts(l.attempts).map((a) => a.id));
  const book = new BalanceBook(balances, await debitsOf(uow.trx, unsent), now);
  const day = spendDay(now);
  const spendKeys = escalating.flatMap((l) => SpendBook.keysFor(deps.spendCaps, l.row.caller_id, l.steps.filter((s) => s.index > l.row.current_step)));
  const spend = new SpendBook(await lockSpend(uow.trx, spendKeys, day), deps.spendCaps, day);

  const moves = new PlanMoves(now);
  const byCaller = [...looks].sort((a, b) => (a.row.caller_id < b.row.caller_id ? -1 : a.row.caller_id > b.row.caller_id ? 1 : 0));
  for (const look of byCaller) movePlan(deps, look, { now, lockedKeys, book, spend, moves });
  await writePlanMoves(uow.trx, { ledger: book.entries(), balanceDeltas: book.deltas(), spend: spend.increments(), ...moves.write() });
  uow.afterCommit(() => deps.onOutboxWritten(moves.messages));
  uow.afterCommit(() => moves.report());
}

function lookAt(deps: ServiceDeps, row: VerificationRow, attempts: readonly AttemptRow[], now: Date): PlanLook {
  const steps = row.plan as PlannedStep[];
  const current = attempts.find((a) => a.step_index === row.current_step);
  const step = steps.find((s) => s.index === row.current_step);
  const verdict =
    current === undefined || step === undefined
      ? undefined
      : judgeStep(
          step,
          { status: current.status as AttemptStatus, createdAt: current.created_at, providerErrorCode: current.provider_error_code },
          now,
          distrustedReceipt(deps, current, steps[0]?.country ?? ""),
        );
  return { row, steps, attempts, current, verdict };
}

/**
 * Why the attempt's delivery receipt does not show the code arrived, if it does not: its route is passed over to the
 * destination's country for a collapse of conversion measured on sends like this one. (The country is the first
 * step's, as conversion is counted.)
 */
function distrustedReceipt(deps: ServiceDeps, attempt: AttemptRow, country: string): DistrustedReceipt | undefined {
  const circuit = deps.routeHealth?.(attempt.route_id)?.conversion?.get(country)?.circuit;
  const distrusted = circuit === undefined ? undefined : distrustedSends(circuit);
  if (distrusted === undefined || attempt.created_at < distrusted.since || (distrusted.until !== undefined && attempt.created_at >= distrusted.until)) return undefined;
  return { reason: `route ${attempt.route_id}${country ? ` to ${country}` : ""} is passed over (${circuit!.reason})` };
}

/** Attempts no provider call has started: a later step supersedes them. */
function unsentAttempts(attempts: readonly AttemptRow[]): AttemptRow[] {
  return attempts.filter((a) => a.status === "QUEUED" && a.submit_started_at === null);
}

interface MoveContext {
  readonly now: Date;
  /** Guard keys of addresses locked after repeated wrong codes. */
  readonly lockedKeys: ReadonlySet<string>;
  readonly book: BalanceBook;
  readonly spend: SpendBook;
  readonly moves: PlanMoves;
}

/** Decides one plan's move and adds its writes to the batch's. */
function movePlan(deps: ServiceDeps, look: PlanLook, { now, lockedKeys, book, spend, moves }: MoveContext): void {
  const { row, steps, attempts, current, verdict } = look;
  if (current === undefined || verdict === undefined || verdict.kind === "done") {
    moves.position(row, row.current_step, null);
    return;
  }
  if (verdict.kind === "wait") {
    moves.position(row, row.current_step, verdict.until);
    return;
  }

  const skipped: string[] = [];
  const earlier = attempts.map((a) => ({ channel: a.channel as PlannedStep["channel"], createdAt: a.created_at }));
  for (const candidate of followingSteps(steps, row.current_step, earlier, now)) {
    if (candidate.skip) {
      skipped.push(candidate.skip);
      continue;
    }
    const next = candidate.step;
    if (guardKeysFor(deps.protector, row.caller_id, [next.address]).some((key) => lockedKeys.has(key))) {
      skipped.push(`${next.channel} skipped: its address is locked after repeated wrong codes`);
      continue;
    }
    const capped = spend.refusal(row.caller_id, next);
    if (capped !== undefined) {
      skipped.push(`${next.channel} skipped: ${capped}`);
      continue;
    }
    const attemptId = deps.ids.next("att");
    const unpaid = unpaidReason(next, book.debit(row.caller_id, attemptId, { currency: next.currency, micros: next.totalPriceMicros }));
    if (unpaid !== undefined) {
      skipped.push(`${next.channel} skipped: ${unpaid}`);
      continue;
    }
    spend.charge(row.caller_id, next);
    // The earlier steps are superseded: an attempt of theirs that no worker has started is never sent
    // (a call in flight completes and is recorded). Its refund follows the next step's debit.
    for (const attempt of unsentAttempts(attempts)) {
      moves.cancel(attempt.id);
      book.refund(attempt.id);
    }
    const reason = [verdict.reason, ...skipped, `next: ${next.channel}`].join("; ");
    const trace = markSpan("otp.fallback", current.traceparent, {
      [ATTR.verificationId]: row.id,
      [ATTR.attemptId]: attemptId,
      [ATTR.channel]: next.channel,
      [ATTR.routeId]: next.routeId,
      [ATTR.priceMicros]: next.totalPriceMicros,
      [ATTR.fallbackReason]: verdict.reason,
    }, deps.random);
    moves.event(row, { verificationId: row.id, kind: "FALLBACK_TRIGGERED", attemptId: current.id, channel: next.channel, routeId: next.routeId, reason, traceId: trace.traceId, occurredAt: now });
    const queued = queuedAttempt(attemptId, {
      verificationId: row.id,
      callerId: row.caller_id,
      step: next,
      code: newAttemptCode(deps, row.id, row.code_length),
      render: row.render as RenderOptions,
      expiresAt: row.expires_at,
      trace,
      now,
    });
    moves.attempt(queued.row, queued.dispatch);
    moves.event(row, queued.event);
    moves.escalation(row, verdict.cause, next);
    moves.position(row, next.index, new Date(now.getTime() + next.deadlineMs));
    return;
  }
  // Nothing left to try: say so once, with every reason, and stop looking.
  const reason = [verdict.reason, ...skipped, "no step left"].join("; ");
  markSpan("otp.fallback", current.traceparent, { [ATTR.verificationId]: row.id, [ATTR.fallbackReason]: verdict.reason, [ATTR.status]: "no step left" }, deps.random);
  moves.event(row, { verificationId: row.id, kind: "FALLBACK_TRIGGERED", attemptId: current.id, reason, traceId: row.trace_id, occurredAt: now });
  moves.escalation(row, verdict.cause, undefined);
  moves.position(row, row.current_step, null);
}

/** The writes of a batch of plan moves, gathered as the moves are decided; events numbered on from each plan's held number. */
class PlanMoves {
  private readonly positions: PlanPosition[] = [];
  private readonly canceled: string[] = [];
  private readonly attempts: NewAttemptRow[] = [];
  private readonly events: NewDeliveryEventRow[] = [];
  /** The batch's outbox messages: written with it, published once it has committed. */
  readonly messages: OutboxMessage[] = [];
  private readonly lastEvent = new Map<string, number>();
  private readonly escalations: Array<{ cause: EscalationCause; next: PlannedStep | undefined; lateSeconds: number }> = [];

  constructor(private readonly now: Date) {}

  event(row: VerificationRow, event: NewDeliveryEvent): void {
    const sequence = (this.lastEvent.get(row.id) ?? row.event_seq) + 1;
    const full: DeliveryEvent = { sequence, ...event };
    const rows = eventRows(full);
    this.events.push(rows.event);
    this.messages.push(rows.outbox);
    this.lastEvent.set(row.id, sequence);
  }

  attempt(row: NewAttemptRow, dispatch: OutboxMessage): void {
    this.attempts.push(row);
    this.messages.push(dispatch);
  }

  cancel(attemptId: string): void {
    this.canceled.push(attemptId);
  }

  /** An escalation to `next` (none left when undefined), for the metrics once the batch is committed. */
  escalation(row: VerificationRow, cause: EscalationCause, next: PlannedStep | undefined): void {
    const lateSeconds = row.next_step_at === null ? 0 : (this.now.getTime() - row.next_step_at.getTime()) / 1000;
    this.escalations.push({ cause, next, lateSeconds });
  }

  report(): void {
    for (const { cause, next, lateSeconds } of this.escalations) {
      otpMetrics.escalated(cause);
      otpMetrics.late(lateSeconds);
      if (next !== undefined) otpMetrics.sent(next);
    }
  }

  /** The plan's move ends here: where it stands, and the event number its events ended on. */
  position(row: VerificationRow, currentStep: number, nextStepAt: Date | null): void {
    this.positions.push({ id: row.id, currentStep, nextStepAt, heldEventSeq: row.event_seq, eventSeq: this.lastEvent.get(row.id) ?? row.event_seq });
  }

  write() {
    return { now: this.now, positions: this.positions, canceledAttemptIds: this.canceled, attempts: this.attempts, events: this.events, outbox: this.messages.map((m) => outboxRow(m, this.now)) };
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
