import type { IncomingHttpHeaders } from "node:http";
import { normalizeReceiptStatus, type DeliveryReceipt } from "../../../domain/receipt.js";
import type { ReceiptPoller, WebhookReceiver } from "../../../receipts/receipt-source.js";
import { verifyBodySignature } from "../../../receipts/signature.js";
import { callJson } from "../http-json.js";
import type { HttpRouteSettings } from "./http-route-provider.js";

/** The header carrying "sha256=<hex HMAC-SHA-256 of the raw body>". */
export const SIGNATURE_HEADER = "x-signature";

/**
 * The http-route API's receipt, pushed or polled:
 * {"bx_message_id", "status", "error_code"?, "error_message"?, "timestamp"?}.
 * Webhook bodies hold one receipt or a list.
 */
export function httpRouteWebhook(settings: HttpRouteSettings): WebhookReceiver | undefined {
  const secret = settings.webhookSecret;
  if (secret === undefined || settings.receipts === "poll" || settings.receipts === "none") return undefined;
  return {
    provider: settings.name,
    authenticate: (rawBody: Buffer, headers: IncomingHttpHeaders) => verifyBodySignature(secret.reveal(), rawBody, headers[SIGNATURE_HEADER]),
    parse: (rawBody: Buffer) => {
      const body: unknown = JSON.parse(rawBody.toString("utf8"));
      const items = Array.isArray(body) ? body : [body];
      return items.map((item) => {
        const receipt = toReceipt(settings.name, item);
        if (receipt === undefined) throw new Error("expected {bx_message_id, status} with a known status");
        return receipt;
      });
    },
  };
}

export function httpRoutePoller(settings: HttpRouteSettings): ReceiptPoller | undefined {
  if (settings.receipts !== "poll" && settings.receipts !== "both") return undefined;
  return {
    provider: settings.name,
    intervalMs: settings.pollIntervalMs,
    poll: async (providerMessageId: string, signal: AbortSignal) => {
      const answer = await callJson({
        method: "GET",
        url: `${settings.baseUrl}/api/v1/dlr/${encodeURIComponent(providerMessageId)}`,
        headers: { "x-api-key": settings.apiKey.reveal() },
        signal,
      });
      return toReceipt(settings.name, answer);
    },
  };
}

function toReceipt(provider: string, item: unknown): DeliveryReceipt | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const { bx_message_id: id, status, error_code: errorCode, error_message: errorMessage, timestamp } = item as Record<string, unknown>;
  if ((typeof id !== "string" && typeof id !== "number") || typeof status !== "string") return undefined;
  const normalized = normalizeReceiptStatus(status);
  if (normalized === undefined) return undefined;
  const at = typeof timestamp === "string" ? new Date(timestamp) : new Date();
  return {
    provider,
    providerMessageId: String(id),
    status: normalized,
    ...(errorCode !== undefined && errorCode !== null ? { errorCode: String(errorCode) } : {}),
    ...(typeof errorMessage === "string" ? { errorReason: errorMessage.slice(0, 200) } : {}),
    occurredAt: Number.isNaN(at.getTime()) ? new Date() : at,
  };
}
