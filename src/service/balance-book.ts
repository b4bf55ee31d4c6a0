import type { Money } from "../domain/money.js";
import type { DebitOutcome } from "../store/repositories/ledger.js";
import type { LedgerEntryRow } from "../store/tables/ledger.js";

/**
 * Metered callers' balances as one transaction locked them, debited and
 * refunded in memory in the order the transaction decides, then written at
 * once (`entries` and `deltas`). Each debit sees every earlier debit and
 * refund of the batch, as if each had been its own statement. A caller
 * without a locked balance is unmetered: its attempts cost it nothing here.
 */
export class BalanceBook {
  private readonly balances: Map<string, Money>;
  private readonly newEntries: LedgerEntryRow[] = [];
  private readonly movedBy = new Map<string, number>();

  /**
   * @param locked the balances of the batch's metered callers, locked until the transaction ends
   * @param debited what earlier debits took for the attempts the batch may refund, by attempt id
   */
  constructor(
    locked: ReadonlyMap<string, Money>,
    private readonly debited: ReadonlyMap<string, { readonly callerId: string; readonly micros: number }>,
    private readonly now: Date,
  ) {
    this.balances = new Map(locked);
  }

  /** Takes an attempt's price from its caller's balance, never below zero. */
  debit(callerId: string, attemptId: string, price: Money): DebitOutcome {
    const balance = this.balances.get(callerId);
    if (balance === undefined) return { kind: "unmetered" };
    if (price.micros === 0) return { kind: "debited" };
    if (balance.currency !== price.currency) return { kind: "wrong-currency", balance };
    if (balance.micros < price.micros) return { kind: "insufficient", balance };
    this.move(callerId, -price.micros, { entry_key: `debit:${attemptId}`, attempt_id: attemptId, kind: "debit" });
    return { kind: "debited" };
  }

  /** Gives back what an attempt was debited; nothing if it was never debited. */
  refund(attemptId: string): void {
    const debit = this.debited.get(attemptId);
    if (debit === undefined || !this.balances.has(debit.callerId)) return;
    this.move(debit.callerId, debit.micros, { entry_key: `refund:${attemptId}`, attempt_id: attemptId, kind: "refund" });
  }

  /** The ledger entries the batch made. */
  entries(): readonly LedgerEntryRow[] {
    return this.newEntries;
  }

  /** Per caller, what its balance moved by in all. */
  deltas(): ReadonlyMap<string, number> {
    return this.movedBy;
  }

  private move(callerId: string, micros: number, entry: Pick<LedgerEntryRow, "entry_key" | "attempt_id" | "kind">): void {
    const balance = this.balances.get(callerId)!;
    this.balances.set(callerId, { currency: balance.currency, micros: balance.micros + micros });
    this.movedBy.set(callerId, (this.movedBy.get(callerId) ?? 0) + micros);
    this.newEntries.push({ caller_id: callerId, amount_micros: micros, created_at: this.now, ...entry });
  }
}
