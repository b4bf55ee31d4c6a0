import type { ColumnType } from "kysely";

/** A quoted plan SendOtp can bind to with `estimate_id`, so its routes and prices hold. */
export interface EstimatesTable {
  id: string;
  caller_id: string;
  /** Hash of the plan input: a send binds only to an estimate of the same request. */
  request_hash: string;
  /** The planned steps as JSON. */
  plan: ColumnType<unknown, string, string>;
  created_at: Date;
  expires_at: Date;
  /** W3C traceparent of the EstimateOtp call (null for estimates made before it was kept). */
  traceparent: string | null;
}
