import type { AttemptStatus } from "./delivery-event.js";
import type { PlannedStep } from "./plan.js";

/** What the fallback plan does about its current step. */
export type StepVerdict =
  /** Nothing yet: look again at `until` (the step's deadline). */
  | { readonly kind: "wait"; readonly until: Date }
  /** The step did its job (delivered, where delivery is the condition), or the attempt was canceled: the plan stops. */
  | { readonly kind: "done" }
  /** Move to the next step now, for this reason (`cause`: the reason's kind, for metrics). */
  | { readonly kind: "escalate"; readonly reason: string; readonly cause: EscalationCause };

/** Why a step is escalated: its attempt failed, was never sent, got no receipt, or its code went unused. */
export type EscalationCause = "attempt_failed" | "not_sent" | "no_receipt" | "code_unused" | "receipt_distrusted";

export interface CurrentAttempt {
  readonly status: AttemptStatus;
  readonly createdAt: Date;
  readonly providerErrorCode?: string | null;
}

const FAILED: ReadonlySet<AttemptStatus> = new Set(["UNDELIVERED", "FAILED", "EXPIRED", "REJECTED"]);

/**
 * Why the current attempt's delivery receipt does not count: its route was passed over for a collapse of
 * conversion that this send is part of (see `distrustedSends`).
 */
export interface DistrustedReceipt {
  readonly reason: string;
}

/**
 * Judges the current step of a pending verification. A failed attempt
 * escalates at once; otherwise the step's deadline (counted from when its
 * attempt was queued) decides: `undelivered` escalates unless a delivery
 * receipt came — and one that `distrusted` says did not get the code through
 * does not count —, `unverified` escalates because the code has not been used.
 */
export function judgeStep(step: PlannedStep, attempt: CurrentAttempt, now: Date, distrusted?: DistrustedReceipt): StepVerdict {
  if (FAILED.has(attempt.status)) {
    const code = attempt.providerErrorCode ? ` (${attempt.providerErrorCode})` : "";
    return { kind: "escalate", reason: `${step.channel} attempt ${attempt.status.toLowerCase()}${code}`, cause: "attempt_failed" };
  }
  if (attempt.status === "CANCELED") return { kind: "done" };
  const deadline = new Date(attempt.createdAt.getTime() + step.deadlineMs);
  if (now < deadline) return { kind: "wait", until: deadline };
  const within = `within ${seconds(step.deadlineMs)}`;
  if (step.escalateWhen === "undelivered") {
    if (attempt.status === "DELIVERED") {
      if (distrusted === undefined) return { kind: "done" };
      return { kind: "escalate", reason: `${step.channel} receipt said delivered, but ${distrusted.reason}; code not used`, cause: "receipt_distrusted" };
    }
    return attempt.status === "QUEUED"
      ? { kind: "escalate", reason: `${step.channel} not sent ${within}`, cause: "not_sent" }
      : { kind: "escalate", reason: `no ${step.channel} delivery receipt ${within}`, cause: "no_receipt" };
  }
  return { kind: "escalate", reason: `${step.channel} code not used ${within}`, cause: "code_unused" };
}

export interface EarlierSend {
  readonly channel: PlannedStep["channel"];
  readonly createdAt: Date;
}

/**
 * The steps after `fromIndex` in order, each with the reason it must be
 * skipped, if any: a channel already used in this verification is not used
 * again inside the step's cooldown (never re-blast one channel).
 */
export function followingSteps(
  steps: readonly PlannedStep[],
  fromIndex: number,
  earlier: readonly EarlierSend[],
  now: Date,
): Array<{ readonly step: PlannedStep; readonly skip?: string }> {
  return steps
    .filter((s) => s.index > fromIndex)
    .map((step) => {
      const last = earlier.filter((e) => e.channel === step.channel).at(-1);
      if (last !== undefined && now.getTime() - last.createdAt.getTime() < step.cooldownMs) {
        return { step, skip: `${step.channel} skipped: used ${seconds(now.getTime() - last.createdAt.getTime())} ago, cooldown ${seconds(step.cooldownMs)}` };
      }
      return { step };
    });
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
