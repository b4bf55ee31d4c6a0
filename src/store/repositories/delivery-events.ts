import type { Executor, Trx } from "../database.js";
import type { DeliveryEventRow, NewDeliveryEventRow } from "../tables/delivery-events.js";

export async function insertDeliveryEvent(trx: Trx, row: NewDeliveryEventRow): Promise<void> {
  await trx.insertInto("delivery_events").values(row).execute();
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
