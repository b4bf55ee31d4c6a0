import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

export interface VerificationsTable {
  id: string;
  caller_id: string;
  /** PENDING | APPROVED | CANCELED | MAX_ATTEMPTS | EXPIRED */
  status: string;
  policy: string;
  /** Destination addresses (JSON of domain Destination). */
  destination: ColumnType<unknown, string, string>;
  /** Guard key of the first step's address: written for older readers; `guard_keys` is what is checked. */
  destination_key: string;
  /** Guard keys (caller + HMAC of the address) of every address the plan may send to: each is counted and lockable. */
  guard_keys: ColumnType<string[], string | undefined, string>;
  /** HMAC-SHA-256 of the first attempt's code; never the code itself. Each attempt also keeps its own code's hash. */
  code_hash: string;
  /** Digits of this verification's codes: every attempt's code has this length. */
  code_length: Generated<number>;
  /** AES-256-GCM sealed code, opened only by workers to render the message. */
  sealed_code: string;
  /** Render options (brand, locale, origin domain, Android hash) as JSON. */
  render: ColumnType<unknown, string, string>;
  /** The planned steps as JSON. */
  plan: ColumnType<unknown, string, string>;
  failed_attempts: Generated<number>;
  max_attempts: number;
  /** Last delivery event sequence handed out; events are numbered without gaps. */
  event_seq: Generated<number>;
  client_reference: string;
  metadata: ColumnType<unknown, string, string>;
  trace_id: string;
  created_at: Date;
  expires_at: Date;
  approved_at: Date | null;
  approved_attempt_id: string | null;
  ended_at: Date | null;
  /** Index of the plan step whose attempt was queued last. */
  current_step: Generated<number>;
  /** When the fallback scheduler next looks at this verification; null when the plan has nothing left to do. */
  next_step_at: Date | null;
}

export type VerificationRow = Selectable<VerificationsTable>;
export type NewVerificationRow = Insertable<VerificationsTable>;
export type VerificationUpdate = Updateable<VerificationsTable>;
