import type { Selectable } from "kysely";

/** A metered caller's balance. */
export interface CallerBalancesTable {
  caller_id: string;
  currency: string;
  balance_micros: number;
}

/** One balance movement, made once by its key: "opening:<caller>", "debit:<attempt>", "refund:<attempt>". */
export interface LedgerEntriesTable {
  entry_key: string;
  caller_id: string;
  attempt_id: string | null;
  /** opening | debit | refund */
  kind: string;
  /** Signed: credits positive, debits negative. */
  amount_micros: number;
  created_at: Date;
}

export type LedgerEntryRow = Selectable<LedgerEntriesTable>;
