import type { Generated, Insertable, Selectable } from "kysely";

/** Messages written in the same transaction as the state change they announce. */
export interface OutboxTable {
  id: Generated<number>;
  /** De-duplication id on the bus (Nats-Msg-Id). */
  msg_id: string;
  subject: string;
  /** Base64 of the message bytes. */
  payload: string;
  headers: Generated<unknown>;
  created_at: Date;
  published_at: Date | null;
}

export type OutboxRow = Selectable<OutboxTable>;
export type NewOutboxRow = Insertable<OutboxTable>;
