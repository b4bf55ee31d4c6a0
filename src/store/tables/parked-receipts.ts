import type { Selectable } from "kysely";

/** A delivery receipt waiting for the attempt whose provider message id it names. */
export interface ParkedReceiptsTable {
  provider: string;
  provider_message_id: string;
  status: string;
  error_code: string | null;
  error_reason: string | null;
  occurred_at: Date;
  received_at: Date;
}

export type ParkedReceiptRow = Selectable<ParkedReceiptsTable>;
