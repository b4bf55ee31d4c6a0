import type { Bus } from "../bus/bus.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { claimUnpublished, decodeOutboxRow, markPublished } from "../store/repositories/outbox.js";
import { inTransaction } from "../store/transaction.js";
import { publishOutboxMessage } from "./outbox-publisher.js";

/**
 * Rows younger than this are left to the process that wrote them, which
 * publishes them right after its commit (outbox-publisher.ts); the relay takes
 * the ones it missed. Far inside the bus's duplicate window (2 min), so a
 * message both publish is still dropped once.
 */
export const RELAY_GRACE_MS = 5_000;

/**
 * Publishes one batch of outbox rows written at least `graceMs` ago and still
 * unpublished, and marks them published, in one transaction that holds the
 * rows' locks. A relay that dies after publishing and before committing leaves
 * the rows unpublished: they are published again with the same msg id, and
 * the bus drops the duplicate.
 */
export async function relayOutboxBatch(db: Db, bus: Bus, clock: Clock, batchSize: number, graceMs = RELAY_GRACE_MS): Promise<number> {
  const now = clock.now();
  return inTransaction(db, async ({ trx }) => {
    const rows = await claimUnpublished(trx, batchSize, new Date(now.getTime() - graceMs));
    // Published concurrently: acknowledged publishes are latency-bound, not CPU-bound.
    await Promise.all(rows.map((row) => publishOutboxMessage(bus, decodeOutboxRow(row))));
    await markPublished(trx, rows.map((r) => r.id), now);
    return rows.length;
  });
}
