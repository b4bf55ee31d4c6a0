import { isPhoneChannel } from "../domain/channel.js";
import { PreconditionError, RateLimitedError } from "../domain/errors.js";
import { slidingCount, windowStart, type WindowLimit } from "../domain/limits.js";
import type { PlannedStep } from "../domain/plan.js";
import { capFor, capReachedReason, nextSpendDay, spendDay, spendKey, SPEND_DAY_MS } from "../domain/spend-cap.js";
import type { Db } from "../store/database.js";
import { admitSends, releaseSend, type SendAdmission, type SendAdmissionQuery, type SendWindow } from "../store/repositories/send-admission.js";
import { retryConflicts } from "../store/transaction.js";
import { otpMetrics } from "../telemetry/metrics.js";
import { GroupRunner } from "../util/group-runner.js";
import type { Caller, ServiceDeps } from "./deps.js";

/** A send its limits let through: counted in its windows until it is released. */
export interface CountedSend {
  readonly kind: "counted";
  /** Whether the caller has a balance its sends are paid from (balances are opened, never closed). */
  readonly metered: boolean;
  /** Takes the send back out of its windows, for a send that did not happen after all. Never throws. */
  release(): Promise<void>;
}

/** What the limits say about a send. */
export type SendAdmissionResult = CountedSend | { readonly kind: "held"; readonly verificationId: string; readonly requestHash: string };

interface LimitedWindow extends SendWindow {
  /** Whether the window, counted with this send, is over its limit. */
  exceeded(counts: { readonly current: number; readonly previous: number }): boolean;
  readonly refusal: string;
  /** When the window lets sends through again. */
  readonly reopensAt: Date;
}

/**
 * Checks a send against the locks and windows of every address the plan may
 * send to (per caller, and across callers when a global ceiling is set), the
 * caller's window and the client IP's, the caller's daily spend on the
 * destination's country, and counts it in each. A repeated
 * idempotency key is answered before anything is counted.
 *
 * Counting happens in its own short statement, before the send's transaction,
 * shared by the sends that arrive together (see `sendAdmissions`), so sends of
 * one caller do not queue on its window row. The guarantee stays: a send is let through only if, with it,
 * every window is within its limit; a refused send, or one whose transaction
 * then fails, is taken back out. (A process that dies between counting and
 * committing leaves its send counted: the limit errs on the safe side.)
 */
export async function admit(
  deps: ServiceDeps,
  caller: Caller,
  request: { readonly idempotencyKey: string; readonly clientIp?: string; readonly deviceId?: string },
  steps: readonly PlannedStep[],
  guardKeys: readonly string[],
  now: Date,
): Promise<SendAdmissionResult> {
  const windows = sendWindows(deps, caller, request, steps, guardKeys, now);
  const admission = await deps.sendAdmissions.submit({ callerId: caller.id, idempotencyKey: request.idempotencyKey, guardKeys, windows, now });
  if (admission.kind === "held") return admission;
  if (admission.kind === "locked") {
    throw new RateLimitedError("a destination is temporarily locked after repeated wrong codes", admission.until.getTime() - now.getTime());
  }
  // A send that cannot be taken back out (the database gone meanwhile) stays counted: the safe side.
  const release = () => retryConflicts(() => releaseSend(deps.db, windows)).catch(() => undefined);
  for (const window of windows) {
    const counts = admission.counts.get(window.key) ?? { current: 0, previous: 0 };
    if (window.exceeded(counts)) {
      await release();
      throw new RateLimitedError(window.refusal, window.reopensAt.getTime() - now.getTime());
    }
  }
  return { kind: "counted", metered: admission.metered, release };
}

/** At most this many sends share one admission statement. */
const MAX_ADMISSION_GROUP = 64;

/**
 * The admission statements of one process: one at a time (two would queue on
 * the caller's window row), each for every send that arrived while the one
 * before ran. Before, each send counted itself, and
 * concurrent sends of one caller queued on its window row one statement after
 * another (a lock convoy that made SendOtp's tail under load).
 */
export function sendAdmissions(db: Db): GroupRunner<SendAdmissionQuery, SendAdmission> {
  return new GroupRunner((queries) => retryConflicts(() => admitSends(db, queries)), { maxGroup: MAX_ADMISSION_GROUP, maxInFlight: 1 }, (size) =>
    otpMetrics.grouped("admission", size),
  );
}

function sendWindows(
  deps: ServiceDeps,
  caller: Caller,
  { clientIp, deviceId }: { readonly clientIp?: string; readonly deviceId?: string },
  steps: readonly PlannedStep[],
  guardKeys: readonly string[],
  now: Date,
): LimitedWindow[] {
  const windows: Array<[string, WindowLimit, string]> = guardKeys.map((key) => [`dest:${key}`, deps.limits.sendsPerDestination, "too many codes sent to this destination"]);
  const global = deps.limits.sendsPerDestinationGlobal;
  if (global !== undefined) {
    for (const address of new Set(steps.map((s) => s.address))) {
      windows.push([`dest-all:${deps.protector.destinationKey(address)}`, global, "too many codes sent to this destination"]);
    }
  }
  windows.push([`caller:${caller.id}`, deps.limits.sendsPerCaller, "too many codes sent by this caller"]);
  if (clientIp) {
    windows.push([`ip:${deps.protector.destinationKey(clientIp)}`, deps.limits.sendsPerClientIp, "too many codes requested from this client IP"]);
  }
  const { sendsPerDevice, sendsPerCallerCountry, sendsPerNumberRange } = deps.limits;
  if (deviceId && sendsPerDevice) {
    windows.push([`device:${caller.id}:${deps.protector.destinationKey(deviceId)}`, sendsPerDevice, "too many codes requested from this device"]);
  }
  const country = steps[0]?.country;
  if (country && sendsPerCallerCountry) {
    windows.push([`country:${caller.id}:${country}`, sendsPerCallerCountry, `too many codes sent to ${country} by this caller`]);
  }
  if (sendsPerNumberRange) {
    // Keyed by the range's keyed hash, like every address: no phone number in the counters.
    for (const phone of new Set(steps.filter((s) => isPhoneChannel(s.channel)).map((s) => s.address))) {
      const range = deps.protector.destinationKey(phone.slice(0, -2));
      windows.push([`range:${caller.id}:${range}`, sendsPerNumberRange, "too many codes sent to neighbouring numbers (a run of sequential numbers looks like SMS pumping)"]);
    }
  }
  const limited: LimitedWindow[] = windows.map(([key, limit, refusal]) => {
    const start = windowStart(now, limit.windowMs);
    return {
      key,
      windowStart: start,
      previousStart: new Date(start.getTime() - limit.windowMs),
      amount: 1,
      exceeded: (counts) => slidingCount(now, limit.windowMs, counts.current, counts.previous) > limit.max,
      refusal,
      reopensAt: new Date(start.getTime() + limit.windowMs),
    };
  });
  const spend = spendWindow(deps, caller, steps[0], now);
  return spend ? [...limited, spend] : limited;
}

/**
 * The caller's spend on the destination's country today, if it is capped: the
 * first step's price is counted now, later steps' when the scheduler queues
 * them (see fallback.ts). A calendar-day window, not a sliding one: a cap is a
 * budget per day.
 */
function spendWindow(deps: ServiceDeps, caller: Caller, first: PlannedStep | undefined, now: Date): LimitedWindow | undefined {
  const cap = capFor(deps.spendCaps?.get(caller.id), first?.country);
  if (first === undefined || cap === undefined || first.totalPriceMicros === 0) return undefined;
  if (first.currency !== cap.currency) {
    throw new PreconditionError(`route ${first.routeId} prices in ${first.currency}; this caller's spend cap is in ${cap.currency}`);
  }
  const day = spendDay(now);
  return {
    key: spendKey(caller.id, first.country!),
    windowStart: day,
    previousStart: new Date(day.getTime() - SPEND_DAY_MS),
    amount: first.totalPriceMicros,
    exceeded: (counts) => counts.current > cap.micros,
    refusal: capReachedReason(first.country!, cap),
    reopensAt: nextSpendDay(now),
  };
}
