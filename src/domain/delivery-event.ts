import type { Channel } from "./channel.js";

export type DeliveryEventKind =
  | "VERIFICATION_CREATED"
  | "ATTEMPT_QUEUED"
  | "ATTEMPT_SUBMITTED"
  | "ATTEMPT_DELIVERED"
  | "ATTEMPT_FAILED"
  | "ATTEMPT_TIMED_OUT"
  | "FALLBACK_TRIGGERED"
  | "VERIFIED"
  | "EXPIRED"
  | "CANCELED"
  /** The wrong-code limit was reached: the verification ended without approval. */
  | "MAX_ATTEMPTS";

export type AttemptStatus =
  | "QUEUED"
  | "SUBMITTED"
  | "DELIVERED"
  | "UNDELIVERED"
  | "FAILED"
  | "EXPIRED"
  | "REJECTED"
  | "CANCELED";

/** Something that happened to a verification or one of its attempts, numbered per verification. */
export interface DeliveryEvent {
  readonly sequence: number;
  readonly verificationId: string;
  readonly kind: DeliveryEventKind;
  readonly attemptId?: string;
  readonly channel?: Channel;
  readonly routeId?: string;
  readonly status?: AttemptStatus;
  readonly providerMessageId?: string;
  readonly providerErrorCode?: string;
  readonly providerErrorReason?: string;
  readonly reason?: string;
  readonly currency?: string;
  readonly priceMicros?: number;
  readonly latencyMs?: number;
  readonly traceId: string;
  readonly occurredAt: Date;
}

/** Events after which a verification's stream ends. */
export const FINAL_EVENT_KINDS: ReadonlySet<DeliveryEventKind> = new Set(["VERIFIED", "EXPIRED", "CANCELED", "MAX_ATTEMPTS"]);
