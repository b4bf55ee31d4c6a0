/** Where a receipt says an attempt's message got to. Statuses only move forward: SUBMITTED, then one final status. */
export type ReceiptStatus = "SUBMITTED" | "DELIVERED" | "UNDELIVERED" | "FAILED" | "EXPIRED" | "REJECTED";

/** A provider's delivery receipt (DLR), normalized. */
export interface DeliveryReceipt {
  /** The configured provider it came from. */
  readonly provider: string;
  readonly providerMessageId: string;
  readonly status: ReceiptStatus;
  readonly errorCode?: string;
  readonly errorReason?: string;
  readonly occurredAt: Date;
}

const STATUS_WORDS: Readonly<Record<string, ReceiptStatus>> = {
  accepted: "SUBMITTED",
  queued: "SUBMITTED",
  enroute: "SUBMITTED",
  sent: "SUBMITTED",
  submitted: "SUBMITTED",
  delivered: "DELIVERED",
  delivrd: "DELIVERED",
  undelivered: "UNDELIVERED",
  undeliv: "UNDELIVERED",
  undeliverable: "UNDELIVERED",
  failed: "FAILED",
  expired: "EXPIRED",
  rejected: "REJECTED",
  rejectd: "REJECTED",
};

/**
 * Maps a provider's status word to ours: the HTTP APIs' words and SMPP's
 * 7-letter forms (DELIVRD, UNDELIV, REJECTD); undefined for words we do not know.
 */
export function normalizeReceiptStatus(word: string): ReceiptStatus | undefined {
  return STATUS_WORDS[word.trim().toLowerCase().replace(/[\s_-]/g, "")];
}

export function isFinalReceipt(status: ReceiptStatus): status is Exclude<ReceiptStatus, "SUBMITTED"> {
  return status !== "SUBMITTED";
}
