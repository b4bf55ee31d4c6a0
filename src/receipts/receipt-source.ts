import type { IncomingHttpHeaders } from "node:http";
import type { DeliveryReceipt } from "../domain/receipt.js";

/** Receipts a provider pushes to `POST /webhooks/dlr/<provider>`. */
export interface WebhookReceiver {
  readonly provider: string;
  /** True when the request proves it comes from the provider (signature over the raw body). */
  authenticate(rawBody: Buffer, headers: IncomingHttpHeaders): boolean;
  /** The receipts in an authenticated body; throws on a body that is not the provider's shape. */
  parse(rawBody: Buffer): DeliveryReceipt[];
  /**
   * A subscription handshake by `GET` (WhatsApp's `hub.challenge`): what to answer when the query proves the
   * provider knows our token, undefined to refuse. Absent for providers without one.
   */
  handshake?(query: URLSearchParams): string | undefined;
}

/** Receipts we ask a provider for, one submitted message at a time. */
export interface ReceiptPoller {
  readonly provider: string;
  readonly intervalMs: number;
  /** The latest receipt for the message, or undefined while the provider knows nothing new. */
  poll(providerMessageId: string, signal: AbortSignal): Promise<DeliveryReceipt | undefined>;
}
