import type { Selectable } from "kysely";

/** Consecutive wrong codes per destination, across verifications, and the lock they lead to. */
export interface DestinationGuardsTable {
  destination_key: string;
  consecutive_failures: number;
  lock_count: number;
  locked_until: Date | null;
}

export type DestinationGuardRow = Selectable<DestinationGuardsTable>;
