import type { IncomingHttpHeaders } from "node:http";
import type { DeliveryReceipt, ReceiptStatus } from "../../../domain/receipt.js";
import type { WebhookReceiver } from "../../../receipts/receipt-source.js";
import { verifyBodySignature } from "../../../receipts/signature.js";
import type { VoiceHttpSettings } from "./voice-http-provider.js";

/** Call outcomes as receipts: answered and played is delivered; the rest are not. */
const CALL_STATUS: Readonly<Record<string, ReceiptStatus>> = {
  queued: "SUBMITTED",
  ringing: "SUBMITTED",
  "in-progress": "SUBMITTED",
  completed: "DELIVERED",
  "no-answer": "UNDELIVERED",
  busy: "UNDELIVERED",
  failed: "FAILED",
  canceled: "FAILED",
};

/** `{"call_id", "status", "timestamp"?}` posted with `X-Signature: sha256=<hex>`. */
export function voiceHttpWebhook(settings: VoiceHttpSettings): WebhookReceiver {
  return {
    provider: settings.name,
    authenticate: (rawBody: Buffer, headers: IncomingHttpHeaders) => verifyBodySignature(settings.webhookSecret.reveal(), rawBody, headers["x-signature"]),
    parse: (rawBody: Buffer) => {
      const body = JSON.parse(rawBody.toString("utf8")) as Record<string, unknown>;
      const status = typeof body.status === "string" ? CALL_STATUS[body.status] : undefined;
      if (typeof body.call_id !== "string" || status === undefined) throw new Error(`expected {call_id, status} with status one of ${Object.keys(CALL_STATUS).join(", ")}`);
      const at = typeof body.timestamp === "string" ? new Date(body.timestamp) : new Date();
      const receipt: DeliveryReceipt = {
        provider: settings.name,
        providerMessageId: body.call_id,
        status,
        ...(status !== "DELIVERED" && status !== "SUBMITTED" ? { errorCode: String(body.status) } : {}),
        occurredAt: Number.isNaN(at.getTime()) ? new Date() : at,
      };
      return [receipt];
    },
  };
}
