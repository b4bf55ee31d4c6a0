import type { Generated, Insertable, Selectable } from "kysely";

export interface AttemptsTable {
  id: string;
  verification_id: string;
  step_index: number;
  channel: string;
  route_id: string;
  provider: string;
  sender: string;
  /** QUEUED | SUBMITTED | DELIVERED | UNDELIVERED | FAILED | EXPIRED | REJECTED | CANCELED */
  status: string;
  provider_message_id: string | null;
  provider_error_code: string | null;
  provider_error_reason: string | null;
  currency: string;
  price_micros: number;
  trace_id: string;
  /** W3C traceparent of the send, continued by dispatch and receipts. */
  traceparent: string;
  created_at: Date;
  submitted_at: Date | null;
  completed_at: Date | null;
  /** Set while a provider call may be in flight; cleared when it failed for certain. */
  submit_started_at: Generated<Date | null>;
  submit_tries: Generated<number>;
  next_poll_at: Generated<Date | null>;
  /** HMAC of this attempt's own code (null on attempts older than per-attempt codes: the verification's counts). */
  code_hash: Generated<string | null>;
  /** This attempt's code, sealed for the worker that renders it. */
  sealed_code: Generated<string | null>;
}

export type AttemptRow = Selectable<AttemptsTable>;
export type NewAttemptRow = Insertable<AttemptsTable>;
