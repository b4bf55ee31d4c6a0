import type { Generated } from "kysely";

/**
 * Attempts of one route that finished in one minute, by outcome: per-minute
 * rollups route health reads (see migration 20261123T1300-route-outcomes).
 */
export interface RouteOutcomesTable {
  minute: Date;
  route_id: string;
  /** ISO 3166-1 alpha-2 of the destination's phone number; '' when it has none (email, push) or for rows before it was counted. */
  country: Generated<string>;
  /** -1: finished undelivered; else delivered, with a latency under this bound (ms) and at least the next lower one. */
  latency_le_ms: number;
  /** Spreads one count over a few rows, so concurrent receipts of one route rarely wait for each other. */
  shard: number;
  attempts: number;
  latency_ms_sum: number;
}
