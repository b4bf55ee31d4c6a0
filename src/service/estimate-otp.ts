import type { Money } from "../domain/money.js";
import { formatMoney } from "../domain/money.js";
import type { PlannedStep } from "../domain/plan.js";
import { insertEstimate } from "../store/repositories/estimates.js";
import { findBalance } from "../store/repositories/ledger.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { planFor, planningState, type PlanInput } from "./plan-request.js";
import { hashPlanInput } from "./request-hash.js";
import type { TraceContext } from "../telemetry/trace-context.js";

/** How long SendOtp can bind to an estimate. */
export const ESTIMATE_TTL_MS = 10 * 60_000;

export interface EstimateResult {
  readonly estimateId: string;
  readonly expiresAt: Date;
  readonly steps: readonly PlannedStep[];
  readonly currency: string;
  readonly firstStepMicros: number;
  readonly worstCaseMicros: number;
  /** The caller's balance; undefined for a caller that is not metered. */
  readonly balance?: Money;
  /** The balance pays the first step (what SendOtp requires). */
  readonly sufficientBalance: boolean;
  readonly warnings: readonly string[];
}

/**
 * Plans and prices the whole fallback plan without sending, and keeps it for
 * `ESTIMATE_TTL_MS` under an id SendOtp can bind to.
 */
export async function estimateOtp(deps: ServiceDeps, caller: Caller, input: PlanInput, trace?: TraceContext): Promise<EstimateResult> {
  const plan = planFor(deps.catalogue, caller, input, planningState(deps));
  const first = plan.steps[0]!;
  const warnings = [...plan.warnings];
  if (plan.steps.some((s) => s.currency !== first.currency)) warnings.push("steps are priced in different currencies; totals use the first step's");
  const worstCaseMicros = plan.steps.reduce((sum, s) => sum + s.totalPriceMicros, 0);
  const balance = await findBalance(deps.db, caller.id);
  let sufficientBalance = true;
  if (balance !== undefined) {
    sufficientBalance = balance.currency === first.currency && balance.micros >= first.totalPriceMicros;
    if (!sufficientBalance) warnings.push(`balance ${formatMoney(balance)} cannot pay the first step (${formatMoney({ currency: first.currency, micros: first.totalPriceMicros })})`);
    else if (balance.micros < worstCaseMicros) warnings.push(`balance ${formatMoney(balance)} pays the first step but not every fallback step`);
  }
  const now = deps.clock.now();
  const estimate = {
    id: deps.ids.next("est"),
    callerId: caller.id,
    requestHash: hashPlanInput(input),
    plan: plan.steps,
    expiresAt: new Date(now.getTime() + ESTIMATE_TTL_MS),
    ...(trace ? { traceparent: trace.traceparent } : {}),
  };
  await insertEstimate(deps.db, estimate, now);
  return {
    estimateId: estimate.id,
    expiresAt: estimate.expiresAt,
    steps: plan.steps,
    currency: first.currency,
    firstStepMicros: first.totalPriceMicros,
    worstCaseMicros,
    ...(balance ? { balance } : {}),
    sufficientBalance,
    warnings,
  };
}
