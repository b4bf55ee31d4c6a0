import type { PlannedStep } from "../domain/plan.js";
import { capFor, capReachedReason, spendKey, type DailySpendCap } from "../domain/spend-cap.js";
import type { SpendIncrement } from "../store/repositories/spend-counters.js";

/**
 * Callers' spend per country today as one transaction locked it, charged in
 * memory in the order the transaction decides and written at once
 * (`increments`). Each charge sees every earlier one of the batch. A step to a
 * country its caller has no cap on is neither checked nor counted.
 */
export class SpendBook {
  private readonly added = new Map<string, number>();

  /**
   * @param spent the day's spend by key (`spendKey`), locked until the transaction ends
   * @param caps callers' caps, by caller id
   */
  constructor(
    private readonly spent: ReadonlyMap<string, number>,
    private readonly caps: ReadonlyMap<string, DailySpendCap> | undefined,
    private readonly day: Date,
  ) {}

  /** The keys a batch must lock before charging `steps` of `callerId`. */
  static keysFor(caps: ReadonlyMap<string, DailySpendCap> | undefined, callerId: string, steps: readonly PlannedStep[]): string[] {
    const cap = caps?.get(callerId);
    return steps.filter((s) => s.totalPriceMicros > 0 && capFor(cap, s.country) !== undefined).map((s) => spendKey(callerId, s.country!));
  }

  /** Why the step may not be charged (its country's cap would be passed); undefined when it may. */
  refusal(callerId: string, step: PlannedStep): string | undefined {
    const cap = capFor(this.caps?.get(callerId), step.country);
    if (cap === undefined || step.totalPriceMicros === 0) return undefined;
    if (step.currency !== cap.currency) return `route ${step.routeId} prices in ${step.currency}; the spend cap is in ${cap.currency}`;
    const key = spendKey(callerId, step.country!);
    const total = (this.spent.get(key) ?? 0) + (this.added.get(key) ?? 0) + step.totalPriceMicros;
    return total > cap.micros ? capReachedReason(step.country!, cap) : undefined;
  }

  /** Counts the step's price in today's spend (a step `refusal` let through). */
  charge(callerId: string, step: PlannedStep): void {
    if (capFor(this.caps?.get(callerId), step.country) === undefined || step.totalPriceMicros === 0) return;
    const key = spendKey(callerId, step.country!);
    this.added.set(key, (this.added.get(key) ?? 0) + step.totalPriceMicros);
  }

  increments(): SpendIncrement[] {
    return [...this.added].map(([key, micros]) => ({ key, day: this.day, micros }));
  }
}
