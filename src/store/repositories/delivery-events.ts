import type { Executor, Trx } from "../database.js";
import type { DeliveryEventRow, NewDeliveryEventRow } from "../tables/delivery-events.js";
import type { NewOutboxRow } from "../tables/outbox.js";

/** An event as a write appends it: its timeline row (numbered on from the verification's held number) and its message. */
export interface EventRecord {
  readonly event: NewDeliveryEventRow;
  readonly message: NewOutboxRow;
}

/**
 * Appends an event and its outbox message in one statement, moving the
 * verification's last event number to the event's. The caller holds the
 * verification's lock and read its number under it; a number out of step
 * (some writer did not take the lock) throws, and the transaction rolls back.
 */
export async function appendDeliveryEvent(trx: Trx, row: NewDeliveryEventRow, message: NewOutboxRow): Promise<void> {
  const advanced = await trx
    .with("advanced", (db) =>
      db
        .updateTable("verifications")
        .set({ event_seq: row.sequence })
        .where("id", "=", row.verification_id)
        .where("event_seq", "=", row.sequence - 1)
        .returning("id"),
    )
    .with("event", (db) => db.insertInto("delivery_events").values(row).returning("sequence"))
    .with("message", (db) => db.insertInto("outbox").values(message).returning("id"))
    .selectFrom("advanced")
    .select("id")
    .execute();
  if (advanced.length !== 1) throw new Error(`event ${row.sequence} of verification ${row.verification_id} is out of step with its last event number`);
}

/** A verification's events after `afterSequence`, in order. */
export async function listDeliveryEvents(
  db: Executor,
  verificationId: string,
  afterSequence = 0,
): Promise<DeliveryEventRow[]> {
  return db
    .selectFrom("delivery_events")
    .selectAll()
    .where("verification_id", "=", verificationId)
    .where("sequence", ">", afterSequence)
    .orderBy("sequence")
    .execute();
}
