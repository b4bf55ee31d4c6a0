import { IdempotencyConflictError, PreconditionError, RateLimitedError } from "../domain/errors.js";
import { slidingCount, windowStart, type WindowLimit } from "../domain/limits.js";
import type { Plan, PlannedStep } from "../domain/plan.js";
import type { TraceContext } from "../telemetry/trace-context.js";
import { listAttempts } from "../store/repositories/attempts.js";
import { findLiveEstimate } from "../store/repositories/estimates.js";
import { incrementWindowCounter } from "../store/repositories/abuse-counters.js";
import { guardKeysFor, lockedUntil } from "./address-guards.js";
import { claimIdempotencyKey, findIdempotencyKey } from "../store/repositories/idempotency-keys.js";
import type { IdempotencyKeyRow } from "../store/tables/idempotency-keys.js";
import { findVerification, insertVerification } from "../store/repositories/verifications.js";
import { inTransaction, type UnitOfWork } from "../store/transaction.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { recordEvent } from "./events.js";
import { newAttemptCode, queueAttempt } from "./queue-attempt.js";
import { canonicalHash, hashPlanInput } from "./request-hash.js";
import { planFor, type PlanInput } from "./plan-request.js";
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
 * attempt, their events and the dispatch message are written in one
 * transaction: after a crash there is either all of it or none of it.
 */
export async function sendOtp(
  deps: ServiceDeps,
  caller: Caller,
  command: SendOtpCommand,
  trace: TraceContext,
): Promise<SendOtpResult> {
  const now = deps.clock.now();
  const requestHash = canonicalHash(command);
  // A replay answers from what the first request made, before anything (an expired estimate, a
  // changed route catalogue, a limit) could refuse it. A replay racing its original is caught below.
  const replayed = command.idempotencyKey ? await findIdempotencyKey(deps.db, caller.id, command.idempotencyKey) : undefined;
  if (replayed !== undefined) return loadSendResult(deps, caller, heldBy(replayed, requestHash), []);
  const plan = command.estimateId ? await boundPlan(deps, caller, command.estimateId, command, now) : planFor(deps.catalogue, caller, command, deps.routeHealth);
  const first = plan.steps[0]!;
  const verificationId = deps.ids.next("vrf");

  const existingId = await inTransaction(deps.db, async (uow) => {
    if (command.idempotencyKey) {
      const held = await claimIdempotencyKey(uow.trx, {
        callerId: caller.id,
        key: command.idempotencyKey,
        requestHash,
        verificationId,
        now,
      });
      if (held !== undefined) return heldBy(held, requestHash);
    }
    const guardKeys = guardKeysFor(deps.protector, caller.id, plan.steps.map((s) => s.address));
    await enforceSendLimits(deps, uow, caller, command, plan.steps, guardKeys, now);

    const code = newAttemptCode(deps, verificationId, command.codeLength);
    const expiresAt = new Date(now.getTime() + command.ttlMs);
    await insertVerification(uow.trx, {
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
    });
    await recordEvent(uow, { verificationId, kind: "VERIFICATION_CREATED", traceId: trace.traceId, occurredAt: now }, deps.onOutboxWritten);
    const queued = await queueAttempt(deps, uow, { verificationId, callerId: caller.id, step: first, code, render: command.render, expiresAt, trace, now });
    // Thrown inside the transaction: nothing of this send is kept.
    if (queued.kind === "unpaid") throw new PreconditionError(queued.reason);
    return undefined;
  });

  return loadSendResult(deps, caller, existingId ?? verificationId, plan.warnings);
}

/** The verification an idempotency key was first used for; refused if it was for a different request. */
function heldBy(held: IdempotencyKeyRow, requestHash: string): string {
  if (held.request_hash !== requestHash) throw new IdempotencyConflictError("idempotency_key was already used for a different request");
  return held.verification_id;
}

/**
 * The locks and windows of every address the plan may send to (per caller,
 * and across callers when a global ceiling is set), the caller's window and
 * the client IP's. Runs inside the send transaction: a send that fails later does not count.
 */
async function enforceSendLimits(
  deps: ServiceDeps,
  uow: UnitOfWork,
  caller: Caller,
  command: SendOtpCommand,
  steps: readonly PlannedStep[],
  guardKeys: readonly string[],
  now: Date,
): Promise<void> {
  const locked = await lockedUntil(uow.trx, guardKeys, now);
  if (locked !== undefined) {
    throw new RateLimitedError("a destination is temporarily locked after repeated wrong codes", locked.getTime() - now.getTime());
  }
  const windows: Array<[string, WindowLimit, string]> = guardKeys.map((key) => [`dest:${key}`, deps.limits.sendsPerDestination, "too many codes sent to this destination"]);
  const global = deps.limits.sendsPerDestinationGlobal;
  if (global !== undefined) {
    for (const address of new Set(steps.map((s) => s.address))) {
      windows.push([`dest-all:${deps.protector.destinationKey(address)}`, global, "too many codes sent to this destination"]);
    }
  }
  windows.push([`caller:${caller.id}`, deps.limits.sendsPerCaller, "too many codes sent by this caller"]);
  if (command.clientIp) {
    windows.push([`ip:${deps.protector.destinationKey(command.clientIp)}`, deps.limits.sendsPerClientIp, "too many codes requested from this client IP"]);
  }
  for (const [key, limit, message] of windows) {
    const start = windowStart(now, limit.windowMs);
    const counts = await incrementWindowCounter(uow.trx, key, start, new Date(start.getTime() - limit.windowMs));
    if (slidingCount(now, limit.windowMs, counts.current, counts.previous) > limit.max) {
      throw new RateLimitedError(message, start.getTime() + limit.windowMs - now.getTime());
    }
  }
}

async function loadSendResult(deps: ServiceDeps, caller: Caller, verificationId: string, warnings: readonly string[]): Promise<SendOtpResult> {
  const row = await findVerification(deps.db, verificationId, caller.id);
  if (row === undefined) throw new Error(`verification ${verificationId} vanished after commit`);
  const [attempt] = await listAttempts(deps.db, verificationId);
  if (attempt === undefined) throw new Error(`verification ${verificationId} has no attempt`);
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
