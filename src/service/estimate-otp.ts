import type { PlannedStep } from "../domain/plan.js";
import type { Caller, ServiceDeps } from "./deps.js";
import { planFor, type PlanInput } from "./plan-request.js";

export interface EstimateResult {
  readonly steps: readonly PlannedStep[];
  readonly currency: string;
  readonly firstStepMicros: number;
  readonly worstCaseMicros: number;
  readonly warnings: readonly string[];
}

/**
 * Plans and prices the whole fallback plan without sending. Balances and
 * binding an estimate to a send come with the balance ledger.
 */
export function estimateOtp(deps: ServiceDeps, caller: Caller, input: PlanInput): EstimateResult {
  const plan = planFor(deps.catalogue, caller, input);
  const first = plan.steps[0]!;
  const mixed = plan.steps.some((s) => s.currency !== first.currency);
  return {
    steps: plan.steps,
    currency: first.currency,
    firstStepMicros: first.totalPriceMicros,
    worstCaseMicros: plan.steps.reduce((sum, s) => sum + s.totalPriceMicros, 0),
    warnings: mixed ? [...plan.warnings, "steps are priced in different currencies; totals use the first step's"] : plan.warnings,
  };
}
