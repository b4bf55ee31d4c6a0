import type { Selectable } from "kysely";

export interface IdempotencyKeysTable {
  caller_id: string;
  key: string;
  /** SHA-256 of the canonical request: a reused key must come with the same request. */
  request_hash: string;
  verification_id: string;
  created_at: Date;
}

export type IdempotencyKeyRow = Selectable<IdempotencyKeysTable>;
