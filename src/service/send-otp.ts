import { IdempotencyConflictError, PreconditionError } from "../domain/errors.js";
import type { Plan, PlannedStep } from "../domain/plan.js";
import { otpMetrics } from "../telemetry/metrics.js";
import type { TraceContext } from "../telemetry/trace-context.js";
import { findLiveEstimate } from "../store/repositories/estimates.js";
import { claimIdempotencyKey, findIdempotencyKey } from "../store/repositories/idempotency-keys.js";
import { writeNewVerification, writeUnmeteredVerifications, type NewVerificationWrite } from "../store/repositories/new-verification.js";
import { outboxRow, type OutboxMessage } from "../store/repositories/outbox.js";
import { readVerificationRecord } from "../store/repositories/verifications.js";
import type { AttemptRow } from "../store/tables/attempts.js";
import type { IdempotencyKeyRow } from "../store/tables/idempotency-keys.js";
import type { NewVerificationRow, VerificationRow } from "../store/tables/verifications.js";
import type { Db, Executor } from "../store/database.js";
import { inTransaction, retryConflicts } from "../store/transaction.js";
import { GroupRunner } from "../util/group-runner.js";
import { guardKeysFor } from "./address-guards.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { eventRows } from "./events.js";
import { newAttemptCode, queuedAttempt, unpaidReason } from "./queue-attempt.js";
import { canonicalHash, hashPlanInput } from "./request-hash.js";
import { planFor, planningState, type PlanInput } from "./plan-request.js";
import { admit } from "./send-limits.js";
import { attemptView, verificationView, type AttemptView, type VerificationView } from "./views.js";

export interface SendOtpCommand extends PlanInput {
  readonly idempotencyKey: string;
  /** An EstimateOtp result to hold to: its plan and prices are used instead of planning again. */
  readonly estimateId?: string;
  readonly ttlMs: number;
  readonly clientReference: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly clientIp?: string;
  readonly deviceId?: string;
}

export interface SendOtpResult {
  readonly verification: VerificationView;
  readonly firstAttempt: AttemptView;
  readonly priceQuoted: { readonly currency: string; readonly micros: number };
  readonly warnings: readonly string[];
}

/**
 * Creates a verification and queues its first attempt. The verification, the
 * attempt, their events and the dispatch message are written by one statement
 * (all or nothing, paid for or not written): after a crash there is either all
 * of it or none of it.
 *
 * Round trips: the limits (one statement, see send-limits.ts), then the write;
 * with an idempotency key, BEGIN, the key's claim, the write and COMMIT (the
 * key and the verification are kept together or not at all). The limits'
 * statement, and the write of an unmetered caller's send without a key, are
 * shared by the sends that arrive together. The answer is built from the rows
 * written.
 */
export async function sendOtp(
  deps: ServiceDeps,
  caller: Caller,
  command: SendOtpCommand,
  trace: TraceContext,
): Promise<SendOtpResult> {
  const now = deps.clock.now();
  const requestHash = canonicalHash(command);
  let plan: Plan;
  try {
    plan = command.estimateId ? await boundPlan(deps, caller, command.estimateId, command, now) : planFor(deps.catalogue, caller, command, planningState(deps));
  } catch (error) {
    // A replay answers from what the first request made, even when planning would now refuse it
    // (an expired estimate, a changed route catalogue).
    const replayed = command.idempotencyKey ? await findIdempotencyKey(deps.db, caller.id, command.idempotencyKey) : undefined;
    if (replayed === undefined) throw error;
    return loadSendResult(deps, caller, heldBy(heldKey(replayed), requestHash), []);
  }
  const guardKeys = guardKeysFor(deps.protector, caller.id, plan.steps.map((s) => s.address));
  const admission = await admit(deps, caller, command, plan.steps, guardKeys, now);
  if (admission.kind === "held") return loadSendResult(deps, caller, heldBy(admission, requestHash), []);

  const verificationId = deps.ids.next("vrf");
  const start = firstRows(deps, caller, command, plan, guardKeys, verificationId, trace, now);
  const write = async (db: Executor): Promise<{ readonly written: SendOtpResult }> => {
    const written = await writeNewVerification(db, start.write);
    // Nothing of this send was written (inside a transaction, it is rolled back with the key's claim).
    if (written.kind === "unpaid") throw new PreconditionError(unpaidReason(plan.steps[0]!, written.debit)!);
    return { written: sendResult(deps, written.verification, start.attempt, plan.warnings) };
  };
  const idempotencyKey = command.idempotencyKey;
  let outcome: { readonly replayOf: string } | { readonly written: SendOtpResult };
  try {
    if (idempotencyKey) {
      outcome = await inTransaction(deps.db, async ({ trx }) => {
        // A replay racing its original: the key's unique index makes this wait for it, then answer from it.
        const held = await claimIdempotencyKey(trx, { callerId: caller.id, key: idempotencyKey, requestHash, verificationId, now });
        return held !== undefined ? { replayOf: heldBy(heldKey(held), requestHash) } : write(trx);
      });
    } else if (admission.metered) {
      outcome = await retryConflicts(() => write(deps.db));
    } else {
      outcome = { written: sendResult(deps, await deps.unmeteredWrites.submit(start.write), start.attempt, plan.warnings) };
    }
  } catch (error) {
    await admission.release();
    throw error;
  }
  if ("written" in outcome) {
    deps.onOutboxWritten(start.messages);
    otpMetrics.sent(plan.steps[0]!);
    return outcome.written;
  }
  await admission.release();
  return loadSendResult(deps, caller, outcome.replayOf, []);
}

/** At most this many sends share one write statement (about a hundred parameters each; PostgreSQL takes 65,535). */
const MAX_WRITE_GROUP = 64;
/** Write statements run at once: a write held up (a lock, a slow disk) does not hold up every send of the process. */
const WRITES_IN_FLIGHT = 4;

/**
 * The write statements of unmetered callers' sends in one process: a few at a
 * time, each for the sends that arrived while the ones before ran. (A
 * metered caller's send is written alone: its debit decides whether it is
 * written at all.)
 */
export function unmeteredWrites(db: Db): GroupRunner<NewVerificationWrite, VerificationRow> {
  return new GroupRunner((writes) => retryConflicts(() => writeUnmeteredVerifications(db, writes)), { maxGroup: MAX_WRITE_GROUP, maxInFlight: WRITES_IN_FLIGHT }, (size) =>
    otpMetrics.grouped("write", size),
  );
}

/** The rows a send starts with: the verification, its first attempt, both events (numbered 1 and 2) and three messages. */
function firstRows(
  deps: ServiceDeps,
  caller: Caller,
  command: SendOtpCommand,
  plan: Plan,
  guardKeys: readonly string[],
  verificationId: string,
  trace: TraceContext,
  now: Date,
): { write: NewVerificationWrite; attempt: AttemptRow; messages: readonly OutboxMessage[] } {
  const first = plan.steps[0]!;
  const code = newAttemptCode(deps, verificationId, command.codeLength);
  const expiresAt = new Date(now.getTime() + command.ttlMs);
  const queued = queuedAttempt(deps.ids.next("att"), { verificationId, callerId: caller.id, step: first, code, render: command.render, expiresAt, trace, now });
  const events = [
    // The plan's notes (a route passed over and why, a step left out) travel with the event that starts it.
    eventRows({ verificationId, kind: "VERIFICATION_CREATED", traceId: trace.traceId, occurredAt: now, sequence: 1, ...(plan.warnings.length > 0 ? { reason: plan.warnings.join("; ") } : {}) }),
    eventRows({ sequence: 2, ...queued.event }),
  ];
  const verification: NewVerificationRow = {
    id: verificationId,
    caller_id: caller.id,
    status: "PENDING",
    policy: command.policy || "default",
    destination: JSON.stringify(command.destination),
    destination_key: guardKeys[0]!,
    guard_keys: JSON.stringify(guardKeys),
    code_hash: code.hash,
    sealed_code: code.sealed,
    code_length: command.codeLength,
    render: JSON.stringify(command.render),
    plan: JSON.stringify(plan.steps),
    max_attempts: deps.limits.maxWrongCodes,
    event_seq: events.length,
    client_reference: command.clientReference,
    metadata: JSON.stringify(command.metadata),
    trace_id: trace.traceId,
    created_at: now,
    expires_at: expiresAt,
    approved_at: null,
    approved_attempt_id: null,
    ended_at: null,
    current_step: first.index,
    // The fallback scheduler looks again when the first step's deadline passes.
    next_step_at: new Date(now.getTime() + first.deadlineMs),
  };
  const messages = [...events.map((e) => e.outbox), queued.dispatch];
  return {
    messages,
    write: {
      verification,
      attempt: queued.row,
      events: events.map((e) => e.event),
      outbox: messages.map((message) => outboxRow(message, now)),
      price: { currency: first.currency, micros: first.totalPriceMicros },
    },
    attempt: { submit_started_at: null, submit_tries: 0, next_poll_at: null, ...queued.row },
  };
}

/** The verification an idempotency key was first used for; refused if it was for a different request. */
function heldBy(held: { readonly verificationId: string; readonly requestHash: string }, requestHash: string): string {
  if (held.requestHash !== requestHash) throw new IdempotencyConflictError("idempotency_key was already used for a different request");
  return held.verificationId;
}

function heldKey(row: IdempotencyKeyRow): { verificationId: string; requestHash: string } {
  return { verificationId: row.verification_id, requestHash: row.request_hash };
}

async function loadSendResult(deps: ServiceDeps, caller: Caller, verificationId: string, warnings: readonly string[]): Promise<SendOtpResult> {
  const record = await readVerificationRecord(deps.db, verificationId, caller.id);
  if (record === undefined) throw new Error(`verification ${verificationId} vanished after commit`);
  const [attempt] = record.attempts;
  if (attempt === undefined) throw new Error(`verification ${verificationId} has no attempt`);
  return sendResult(deps, record.verification, attempt, warnings);
}

function sendResult(deps: ServiceDeps, row: VerificationRow, attempt: AttemptRow, warnings: readonly string[]): SendOtpResult {
  const verification = verificationView(row, deps.clock.now());
  const firstAttempt = attemptView(attempt);
  return {
    verification,
    firstAttempt,
    priceQuoted: { currency: firstAttempt.currency, micros: verification.steps[0]?.totalPriceMicros ?? 0 },
    warnings,
  };
}

/** The plan of a live estimate of the same request by the same caller. */
async function boundPlan(deps: ServiceDeps, caller: Caller, estimateId: string, input: PlanInput, now: Date): Promise<Plan> {
  const estimate = await findLiveEstimate(deps.db, estimateId, caller.id, now);
  if (estimate === undefined) throw new PreconditionError(`estimate ${estimateId} is unknown or expired`);
  if (estimate.requestHash !== hashPlanInput(input)) {
    throw new PreconditionError(`estimate ${estimateId} was made for a different request (destination, policy, channels, routes or message)`);
  }
  return { steps: estimate.plan as PlannedStep[], warnings: [] };
}
