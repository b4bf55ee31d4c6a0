import type { Bus } from "../bus/bus.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { claimUnpublished, decodeOutboxRow, markPublished } from "../store/repositories/outbox.js";
import { inTransaction } from "../store/transaction.js";

/**
 * Publishes one batch of outbox rows and marks them published, in one
 * transaction that holds the rows' locks. A relay that dies after publishing
 * and before committing leaves the rows unpublished: they are published again
 * with the same msg id, and the bus drops the duplicate.
 */
export async function relayOutboxBatch(db: Db, bus: Bus, clock: Clock, batchSize: number): Promise<number> {
  return inTransaction(db, async ({ trx }) => {
    const rows = await claimUnpublished(trx, batchSize);
    // Published concurrently: acknowledged publishes are latency-bound, not CPU-bound.
    await Promise.all(
      rows.map((row) => {
        const message = decodeOutboxRow(row);
        return bus.publish(message.subject, message.payload, {
          msgId: message.msgId,
          ...(message.headers ? { headers: message.headers } : {}),
        });
      }),
    );
    await markPublished(trx, rows.map((r) => r.id), clock.now());
    return rows.length;
  });
}
