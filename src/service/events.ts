import { eventsSubject } from "../bus/subjects.js";
import { encodeDeliveryEvent } from "../contract/delivery-event.js";
import type { Channel } from "../domain/channel.js";
import type { AttemptStatus, DeliveryEvent } from "../domain/delivery-event.js";
import { outboxRow, type OnOutboxWritten, type OutboxMessage } from "../store/repositories/outbox.js";
import { appendDeliveryEvent, type EventRecord } from "../store/repositories/delivery-events.js";
import { lastEventSequence } from "../store/repositories/verifications.js";
import type { DeliveryEventRow, NewDeliveryEventRow } from "../store/tables/delivery-events.js";
import type { UnitOfWork } from "../store/transaction.js";

export type NewDeliveryEvent = Omit<DeliveryEvent, "sequence">;

/**
 * Appends an event to its verification's timeline and to the outbox, in the
 * caller's transaction, so the event exists on the bus if and only if the
 * change it describes committed. One statement when the transaction has
 * noted the verification's row (`holdsVerification`); else its number is
 * taken from the row first.
 */
export async function recordEvent(
  uow: UnitOfWork,
  event: NewDeliveryEvent,
  onOutboxWritten: OnOutboxWritten,
): Promise<DeliveryEvent> {
  const prepared = await prepareEvent(uow, event);
  await appendDeliveryEvent(uow.trx, prepared.record.event, prepared.record.message);
  eventAppended(uow, prepared, onOutboxWritten);
  return { sequence: prepared.sequence, ...event };
}

/** An event numbered and built as rows, for a write that appends it in the statement making the change it describes. */
export interface PreparedEvent {
  readonly verificationId: string;
  readonly sequence: number;
  readonly record: EventRecord;
  readonly outbox: OutboxMessage;
}

/**
 * Numbers an event on from its verification's last number (as the
 * transaction holds it, else read) and builds its rows; writes nothing. The
 * write that appends them (`markSubmitted`, `markFinished`) checks the number
 * under the verification's lock; once it has, `eventAppended`.
 */
export async function prepareEvent(uow: UnitOfWork, event: NewDeliveryEvent): Promise<PreparedEvent> {
  const last = uow.eventSequences.get(event.verificationId) ?? (await lastEventSequence(uow.trx, event.verificationId));
  const rows = eventRows({ sequence: last + 1, ...event });
  return { verificationId: event.verificationId, sequence: last + 1, record: { event: rows.event, message: outboxRow(rows.outbox, event.occurredAt) }, outbox: rows.outbox };
}

/** After the write that appended a prepared event: its number is the verification's last, and its message goes out after the commit. */
export function eventAppended(uow: UnitOfWork, prepared: PreparedEvent, onOutboxWritten: OnOutboxWritten): void {
  uow.eventSequences.set(prepared.verificationId, prepared.sequence);
  uow.afterCommit(() => onOutboxWritten([prepared.outbox]));
}

/**
 * Notes a verification row this transaction has locked and read (or written
 * with RETURNING): its events are numbered on from the row's last number
 * without reading it again. Only rows read under the lock: another writer's
 * number could be newer.
 */
export function holdsVerification(uow: UnitOfWork, row: { readonly id: string; readonly event_seq: number }): void {
  uow.eventSequences.set(row.id, row.event_seq);
}

/** An event as stored: its timeline row and its message on the bus. */
export function eventRows(event: DeliveryEvent): { event: NewDeliveryEventRow; outbox: OutboxMessage } {
  return {
    event: {
      verification_id: event.verificationId,
      sequence: event.sequence,
      kind: event.kind,
      attempt_id: event.attemptId ?? null,
      channel: event.channel ?? null,
      route_id: event.routeId ?? null,
      status: event.status ?? null,
      provider_message_id: event.providerMessageId ?? null,
      provider_error_code: event.providerErrorCode ?? null,
      provider_error_reason: event.providerErrorReason ?? null,
      reason: event.reason ?? null,
      currency: event.currency ?? null,
      price_micros: event.priceMicros ?? null,
      latency_ms: event.latencyMs ?? null,
      trace_id: event.traceId,
      occurred_at: event.occurredAt,
    },
    outbox: {
      msgId: `${event.verificationId}.${event.sequence}`,
      subject: eventsSubject(event.verificationId),
      payload: encodeDeliveryEvent(event),
    },
  };
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
