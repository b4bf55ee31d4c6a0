import type { Generated, Selectable } from "kysely";

/** Consecutive wrong codes per destination, across verifications, and the lock they lead to. */
export interface DestinationGuardsTable {
  destination_key: string;
  consecutive_failures: number;
  lock_count: number;
  locked_until: Date | null;
  /** The address's last wrong code (retention drops a guard idle for its window). */
  last_failed_at: Generated<Date>;
}

export type DestinationGuardRow = Selectable<DestinationGuardsTable>;
