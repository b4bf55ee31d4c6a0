import type { AttemptsTable } from "./attempts.js";
import type { ConversionCountsTable } from "./conversion-counts.js";
import type { DeliveryEventsTable } from "./delivery-events.js";
import type { DestinationGuardsTable } from "./destination-guards.js";
import type { IdempotencyKeysTable } from "./idempotency-keys.js";
import type { EstimatesTable } from "./estimates.js";
import type { CallerBalancesTable, LedgerEntriesTable } from "./ledger.js";
import type { OutboxTable } from "./outbox.js";
import type { ParkedReceiptsTable } from "./parked-receipts.js";
import type { PrefixBlocksTable } from "./prefix-blocks.js";
import type { RateLimitCountersTable } from "./rate-limit-counters.js";
import type { RouteOutcomesTable } from "./route-outcomes.js";
import type { VerificationsTable } from "./verifications.js";

/** The database as Kysely sees it: one interface per table. */
export interface Database {
  verifications: VerificationsTable;
  attempts: AttemptsTable;
  delivery_events: DeliveryEventsTable;
  outbox: OutboxTable;
  idempotency_keys: IdempotencyKeysTable;
  rate_limit_counters: RateLimitCountersTable;
  destination_guards: DestinationGuardsTable;
  parked_receipts: ParkedReceiptsTable;
  caller_balances: CallerBalancesTable;
  ledger_entries: LedgerEntriesTable;
  estimates: EstimatesTable;
  route_outcomes: RouteOutcomesTable;
  conversion_counts: ConversionCountsTable;
  prefix_blocks: PrefixBlocksTable;
}
