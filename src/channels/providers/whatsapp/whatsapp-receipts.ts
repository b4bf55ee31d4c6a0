import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { DeliveryReceipt, ReceiptStatus } from "../../../domain/receipt.js";
import type { WebhookReceiver } from "../../../receipts/receipt-source.js";
import { verifyBodySignature } from "../../../receipts/signature.js";
import type { WhatsAppSettings } from "./whatsapp-provider.js";

/** A message's `status`: read means the person opened the chat, so it was delivered too. */
const STATUS: Readonly<Record<string, ReceiptStatus>> = {
  sent: "SUBMITTED",
  delivered: "DELIVERED",
  read: "DELIVERED",
  failed: "FAILED",
};

/** Meta's challenge is a number; anything else is not echoed (the answer is ours to vouch for). */
const CHALLENGE = /^[A-Za-z0-9._-]{1,256}$/;

/**
 * The Cloud API's webhook: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` when it is subscribed
 * (answered with the challenge when the token is ours), then `POST`s signed with `X-Hub-Signature-256` (HMAC-SHA-256
 * of the raw body with the app secret), `{"object": "whatsapp_business_account", "entry": [{"changes": [{"field":
 * "messages", "value": {"statuses": [{"id", "status", "timestamp", "errors"?}]}}]}]}`. The same webhook carries
 * what people write back and other fields: those hold no status and are acknowledged and ignored.
 */
export function whatsAppWebhook(settings: WhatsAppSettings): WebhookReceiver {
  return {
    provider: settings.name,
    handshake: (query: URLSearchParams) => {
      const challenge = query.get("hub.challenge") ?? "";
      const token = Buffer.from(query.get("hub.verify_token") ?? "");
      const ours = Buffer.from(settings.verifyToken.reveal());
      const tokenMatches = token.length === ours.length && timingSafeEqual(token, ours);
      return query.get("hub.mode") === "subscribe" && tokenMatches && CHALLENGE.test(challenge) ? challenge : undefined;
    },
    authenticate: (rawBody: Buffer, headers: IncomingHttpHeaders) => verifyBodySignature(settings.appSecret.reveal(), rawBody, headers["x-hub-signature-256"]),
    parse: (rawBody: Buffer) => {
      const body = JSON.parse(rawBody.toString("utf8")) as { object?: unknown; entry?: unknown };
      if (body.object !== "whatsapp_business_account" || !Array.isArray(body.entry)) {
        throw new Error('expected {"object": "whatsapp_business_account", "entry": [...]}');
      }
      const receipts: DeliveryReceipt[] = [];
      for (const entry of body.entry as Array<{ changes?: unknown }>) {
        for (const change of Array.isArray(entry?.changes) ? (entry.changes as Array<{ value?: { statuses?: unknown } }>) : []) {
          const statuses = change?.value?.statuses;
          for (const item of Array.isArray(statuses) ? statuses : []) {
            const receipt = toReceipt(settings.name, item);
            if (receipt !== undefined) receipts.push(receipt);
          }
        }
      }
      return receipts;
    },
  };
}

function toReceipt(provider: string, item: unknown): DeliveryReceipt | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const { id, status: word, timestamp, errors } = item as { id?: unknown; status?: unknown; timestamp?: unknown; errors?: unknown };
  const status = typeof word === "string" ? STATUS[word] : undefined;
  // Statuses we do not act on ("deleted", "warning", …) and malformed ones are skipped, not refused: the webhook is shared.
  if (typeof id !== "string" || id === "" || id.length > 256 || status === undefined) return undefined;
  const error = Array.isArray(errors) ? (errors[0] as { code?: unknown; title?: unknown; message?: unknown } | undefined) : undefined;
  const reason = typeof error?.title === "string" ? error.title : typeof error?.message === "string" ? error.message : undefined;
  const seconds = typeof timestamp === "string" || typeof timestamp === "number" ? Number(timestamp) : Number.NaN;
  const at = new Date(seconds * 1000);
  return {
    provider,
    providerMessageId: id,
    status,
    ...(status === "FAILED" ? { errorCode: typeof error?.code === "number" ? `whatsapp_${error.code}` : "failed" } : {}),
    ...(status === "FAILED" && reason !== undefined ? { errorReason: reason.slice(0, 200) } : {}),
    occurredAt: Number.isFinite(seconds) && at.getTime() <= Date.now() ? at : new Date(),
  };
}
