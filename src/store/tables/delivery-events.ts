import type { Insertable, Selectable } from "kysely";

export interface DeliveryEventsTable {
  verification_id: string;
  sequence: number;
  kind: string;
  attempt_id: string | null;
  channel: string | null;
  route_id: string | null;
  status: string | null;
  provider_message_id: string | null;
  provider_error_code: string | null;
  provider_error_reason: string | null;
  reason: string | null;
  currency: string | null;
  price_micros: number | null;
  latency_ms: number | null;
  trace_id: string;
  occurred_at: Date;
}

export type DeliveryEventRow = Selectable<DeliveryEventsTable>;
export type NewDeliveryEventRow = Insertable<DeliveryEventsTable>;
