import type { DeliveryReceipt, ReceiptStatus } from "../../../domain/receipt.js";

/** `stat:` words of the receipt text (SMPP 3.4 appendix B) and what they mean for us. */
const STAT: Readonly<Record<string, ReceiptStatus>> = {
  ENROUTE: "SUBMITTED",
  ACCEPTD: "SUBMITTED",
  DELIVRD: "DELIVERED",
  EXPIRED: "EXPIRED",
  DELETED: "FAILED",
  UNDELIV: "UNDELIVERED",
  UNKNOWN: "UNDELIVERED",
  REJECTD: "REJECTED",
};

/** The `message_state` TLV's values, in the same order as the words. */
const MESSAGE_STATE: Readonly<Record<number, ReceiptStatus>> = {
  1: "SUBMITTED",
  2: "DELIVERED",
  3: "EXPIRED",
  4: "FAILED",
  5: "UNDELIVERED",
  6: "SUBMITTED",
  7: "UNDELIVERED",
  8: "REJECTED",
};

/** `esm_class` bits 2–5 of a `deliver_sm`: 0x04 says it is an SMSC delivery receipt, not a message from a phone. */
const RECEIPT_TYPE = 0x3c;
const SMSC_DELIVERY_RECEIPT = 0x04;

export interface DeliverSm {
  readonly esm_class?: unknown;
  readonly short_message?: unknown;
  readonly receipted_message_id?: unknown;
  readonly message_state?: unknown;
}

/**
 * The receipt in a `deliver_sm`, or undefined when it is not one (a message from a phone) or says nothing we read.
 * The TLVs `receipted_message_id` and `message_state` win over the text `id:… sub:… dlvrd:… submit date:… done
 * date:… stat:DELIVRD err:000 text:…`, which SMSCs format loosely.
 */
export function smppReceipt(provider: string, pdu: DeliverSm, now: Date): DeliveryReceipt | undefined {
  if (typeof pdu.esm_class !== "number" || (pdu.esm_class & RECEIPT_TYPE) !== SMSC_DELIVERY_RECEIPT) return undefined;
  const text = receiptText(pdu.short_message);
  const id = typeof pdu.receipted_message_id === "string" && pdu.receipted_message_id !== "" ? pdu.receipted_message_id : /(?:^|\s)id:(\S+)/i.exec(text)?.[1];
  const word = /(?:^|\s)stat:(\w+)/i.exec(text)?.[1]?.toUpperCase();
  const status = (typeof pdu.message_state === "number" ? MESSAGE_STATE[pdu.message_state] : undefined) ?? (word !== undefined ? STAT[word] : undefined);
  if (id === undefined || id.length > 64 || status === undefined) return undefined;
  const err = /(?:^|\s)err:(\w+)/i.exec(text)?.[1];
  const failed = status !== "DELIVERED" && status !== "SUBMITTED";
  return {
    provider,
    providerMessageId: id,
    status,
    ...(failed ? { errorCode: err !== undefined && !/^0+$/.test(err) ? `smpp_err_${err}` : (word ?? status).toLowerCase() } : {}),
    occurredAt: now,
  };
}

function receiptText(shortMessage: unknown): string {
  const message = typeof shortMessage === "object" && shortMessage !== null && "message" in shortMessage ? (shortMessage as { message: unknown }).message : shortMessage;
  if (typeof message === "string") return message;
  return Buffer.isBuffer(message) ? message.toString("latin1") : "";
}
