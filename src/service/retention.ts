import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import {
  deleteEndedVerifications,
  deleteIdempotencyKeys,
  deleteIdleGuards,
  deletePublishedOutbox,
  deleteConversionCounts,
  deleteRouteOutcomes,
  deleteWindowCounters,
} from "../store/repositories/retention.js";
import { inTransaction } from "../store/transaction.js";

/** How long rows are kept once they are no longer needed for delivery. */
export interface RetentionWindows {
  /** Outbox rows after they were published (the bus has them; kept a while for inspection). */
  readonly publishedOutboxMs: number;
  /** Rate-limit window counters after their window started (at least twice the longest limit window), and route outcome rollups after their minute. */
  readonly windowCountersMs: number;
  /** Ended verifications with their attempts and events, idempotency keys, and the guards of addresses with no wrong code in as long (and no lock in force). */
  readonly verificationsMs: number;
}

export const DEFAULT_RETENTION: RetentionWindows = {
  publishedOutboxMs: 3_600_000,
  windowCountersMs: 24 * 3_600_000,
  verificationsMs: 30 * 24 * 3_600_000,
};

/**
 * One round of retention: up to `batch` rows of each kind past its window.
 * Returns whether any kind filled its batch (there is more to delete now).
 * Replicas may run it together: deletes of the same rows simply find them gone.
 */
export async function pruneOnce(db: Db, clock: Clock, windows: RetentionWindows, batch: number): Promise<{ more: boolean; deleted: number }> {
  const now = clock.now().getTime();
  const before = (ms: number) => new Date(now - ms);
  const counts = [
    await deletePublishedOutbox(db, before(windows.publishedOutboxMs), batch),
    await deleteWindowCounters(db, before(windows.windowCountersMs), batch),
    await deleteRouteOutcomes(db, before(windows.windowCountersMs), batch),
    await deleteConversionCounts(db, before(windows.windowCountersMs), batch),
    await deleteIdempotencyKeys(db, before(windows.verificationsMs), batch),
    await deleteIdleGuards(db, before(windows.verificationsMs), new Date(now), batch),
    await inTransaction(db, ({ trx }) => deleteEndedVerifications(trx, before(windows.verificationsMs), batch)),
  ];
  return { more: counts.some((n) => n === batch), deleted: counts.reduce((a, b) => a + b, 0) };
}
