import type { Bus } from "../bus/bus.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { claimUnpublished, decodeOutboxRow, markPublished } from "../store/repositories/outbox.js";
import { inTransaction } from "../store/transaction.js";
import { contextOf, inSpan, ownTraceparent, SpanKind } from "../telemetry/spans.js";

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
        const publish = (headers: Record<string, string> | undefined) =>
          bus.publish(message.subject, message.payload, { msgId: message.msgId, ...(headers ? { headers } : {}) });
        const stored = message.headers?.traceparent;
        if (stored === undefined) return publish(message.headers);
        // One PRODUCER span per traced message, under the context stored with it; the consumer continues from this span.
        const attributes = { "messaging.system": "nats", "messaging.destination.name": message.subject, "messaging.message.id": message.msgId };
        const parent = contextOf(stored);
        return inSpan("otp.outbox.relay", { kind: SpanKind.PRODUCER, parent, attributes }, (span) =>
          publish({ ...message.headers, traceparent: ownTraceparent(span, parent) ?? stored }),
        );
      }),
    );
    await markPublished(trx, rows.map((r) => r.id), clock.now());
    return rows.length;
  });
}
