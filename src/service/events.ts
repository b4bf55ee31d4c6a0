import { eventsSubject } from "../bus/subjects.js";
import { encodeDeliveryEvent } from "../contract/delivery-event.js";
import type { Channel } from "../domain/channel.js";
import type { AttemptStatus, DeliveryEvent } from "../domain/delivery-event.js";
import { enqueueOutbox } from "../store/repositories/outbox.js";
import { insertDeliveryEvent } from "../store/repositories/delivery-events.js";
import { nextEventSequence } from "../store/repositories/verifications.js";
import type { DeliveryEventRow } from "../store/tables/delivery-events.js";
import type { UnitOfWork } from "../store/transaction.js";

export type NewDeliveryEvent = Omit<DeliveryEvent, "sequence">;

/**
 * Appends an event to its verification's timeline and to the outbox, in the
 * caller's transaction, so the event exists on the bus if and only if the
 * change it describes committed.
 */
export async function recordEvent(
  uow: UnitOfWork,
  event: NewDeliveryEvent,
  onOutboxWritten: () => void,
): Promise<DeliveryEvent> {
  const sequence = await nextEventSequence(uow.trx, event.verificationId);
  const full: DeliveryEvent = { ...event, sequence };
  await insertDeliveryEvent(uow.trx, {
    verification_id: full.verificationId,
    sequence,
    kind: full.kind,
    attempt_id: full.attemptId ?? null,
    channel: full.channel ?? null,
    route_id: full.routeId ?? null,
    status: full.status ?? null,
    provider_message_id: full.providerMessageId ?? null,
    provider_error_code: full.providerErrorCode ?? null,
    provider_error_reason: full.providerErrorReason ?? null,
    reason: full.reason ?? null,
    currency: full.currency ?? null,
    price_micros: full.priceMicros ?? null,
    latency_ms: full.latencyMs ?? null,
    trace_id: full.traceId,
    occurred_at: full.occurredAt,
  });
  await enqueueOutbox(
    uow.trx,
    {
      msgId: `${full.verificationId}.${sequence}`,
      subject: eventsSubject(full.verificationId),
      payload: encodeDeliveryEvent(full),
    },
    full.occurredAt,
  );
  uow.afterCommit(onOutboxWritten);
  return full;
}

export function eventFromRow(row: DeliveryEventRow): DeliveryEvent {
  return {
    sequence: row.sequence,
    verificationId: row.verification_id,
    kind: row.kind as DeliveryEvent["kind"],
    ...(row.attempt_id ? { attemptId: row.attempt_id } : {}),
    ...(row.channel ? { channel: row.channel as Channel } : {}),
    ...(row.route_id ? { routeId: row.route_id } : {}),
    ...(row.status ? { status: row.status as AttemptStatus } : {}),
    ...(row.provider_message_id ? { providerMessageId: row.provider_message_id } : {}),
    ...(row.provider_error_code ? { providerErrorCode: row.provider_error_code } : {}),
    ...(row.provider_error_reason ? { providerErrorReason: row.provider_error_reason } : {}),
    ...(row.reason ? { reason: row.reason } : {}),
    ...(row.currency !== null && row.price_micros !== null ? { currency: row.currency, priceMicros: row.price_micros } : {}),
    ...(row.latency_ms !== null ? { latencyMs: row.latency_ms } : {}),
    traceId: row.trace_id,
    occurredAt: row.occurred_at,
  };
}
