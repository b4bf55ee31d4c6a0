import type { IncomingHttpHeaders } from "node:http";
import type { DeliveryReceipt, ReceiptStatus } from "../../../domain/receipt.js";
import type { WebhookReceiver } from "../../../receipts/receipt-source.js";
import type { TwilioSettings } from "./twilio-provider.js";
import { verifyTwilioSignature } from "./twilio-signature.js";

/** `MessageStatus` of the Messages API's status callbacks. */
const MESSAGE_STATUS: Readonly<Record<string, ReceiptStatus>> = {
  accepted: "SUBMITTED",
  scheduled: "SUBMITTED",
  queued: "SUBMITTED",
  sending: "SUBMITTED",
  sent: "SUBMITTED",
  delivered: "DELIVERED",
  read: "DELIVERED",
  undelivered: "UNDELIVERED",
  failed: "FAILED",
  canceled: "FAILED",
};

/** `CallStatus` of the Calls API's status callbacks: a completed call was answered and heard the code. */
const CALL_STATUS: Readonly<Record<string, ReceiptStatus>> = {
  queued: "SUBMITTED",
  initiated: "SUBMITTED",
  ringing: "SUBMITTED",
  "in-progress": "SUBMITTED",
  completed: "DELIVERED",
  busy: "UNDELIVERED",
  "no-answer": "UNDELIVERED",
  failed: "FAILED",
  canceled: "FAILED",
};

/**
 * Status callbacks (form-encoded, signed with `X-Twilio-Signature` over the
 * callback URL we gave): `MessageSid` + `MessageStatus` (+ `ErrorCode`, e.g.
 * 30003–30008 for carrier failures), or `CallSid` + `CallStatus`.
 */
export function twilioWebhook(settings: TwilioSettings): WebhookReceiver {
  return {
    provider: settings.name,
    authenticate: (rawBody: Buffer, headers: IncomingHttpHeaders) =>
      verifyTwilioSignature(settings.authToken.reveal(), settings.statusCallbackUrl, new URLSearchParams(rawBody.toString("utf8")), headers["x-twilio-signature"]),
    parse: (rawBody: Buffer) => {
      const form = new URLSearchParams(rawBody.toString("utf8"));
      const messageSid = form.get("MessageSid") ?? form.get("SmsSid");
      const [sid, status] =
        messageSid !== null ? [messageSid, MESSAGE_STATUS[form.get("MessageStatus") ?? form.get("SmsStatus") ?? ""]] : [form.get("CallSid"), CALL_STATUS[form.get("CallStatus") ?? ""]];
      if (sid === null || sid === "" || status === undefined) {
        throw new Error("expected MessageSid and MessageStatus, or CallSid and CallStatus, with a known status");
      }
      const errorCode = form.get("ErrorCode");
      const failed = status !== "DELIVERED" && status !== "SUBMITTED";
      const receipt: DeliveryReceipt = {
        provider: settings.name,
        providerMessageId: sid,
        status,
        ...(failed ? { errorCode: errorCode ? `twilio_${errorCode}` : (form.get("MessageStatus") ?? form.get("CallStatus") ?? "failed") } : {}),
        occurredAt: new Date(),
      };
      return [receipt];
    },
  };
}
