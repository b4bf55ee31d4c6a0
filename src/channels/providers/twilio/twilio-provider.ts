import type { ProviderSettings } from "../../../config/config-file.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";
import { callJson } from "../http-json.js";

export type TwilioSettings = Extract<ProviderSettings, { type: "twilio" }>;

/**
 * Error codes that say "later": rate limits, queue overflow, Twilio's own trouble. Every other 4xx code is
 * permanent — the number (21211 invalid, 21614 not a mobile, 21610 unsubscribed by STOP), the sender (21606,
 * 21659) or the account's permissions (21408 region not enabled) — and no retry fixes it.
 */
const RETRYABLE = new Set([20429, 20500, 20503, 30001]);

/**
 * SMS and voice through Twilio's REST API (or any API-compatible provider at
 * `base_url`), form-encoded, basic auth with the account SID and auth token
 * (or an API key):
 *
 *   POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json
 *     To, From | MessagingServiceSid, Body, StatusCallback          → {"sid": "SM…", "status": "queued"}
 *   POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json
 *     To, From, Twiml (<Say language> of the spaced digits, twice), StatusCallback → {"sid": "CA…", "status": "queued"}
 *
 * Receipts come from the status callbacks (twilio-receipts.ts). Twilio has no
 * idempotency key for these calls: a send whose answer was lost is ambiguous.
 */
export class TwilioProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;

  constructor(private readonly settings: TwilioSettings) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    if (message.channel !== "sms" && message.channel !== "voice") {
      throw new ProviderError(`Twilio sends sms and voice, not ${message.channel}`, false, "unsupported_channel");
    }
    const { settings } = this;
    const form = new URLSearchParams({ To: message.to, StatusCallback: settings.statusCallbackUrl });
    if (message.channel === "sms") {
      if (settings.messagingServiceSid !== undefined) form.set("MessagingServiceSid", settings.messagingServiceSid);
      else form.set("From", message.sender);
      form.set("Body", message.text);
    } else {
      form.set("From", message.sender);
      form.set("Twiml", `<Response><Say language="${escapeXml(message.voiceLanguage ?? "en-US")}">${escapeXml(message.text)}</Say></Response>`);
    }
    const user = settings.apiKey?.sid ?? settings.accountSid;
    const password = settings.apiKey?.secret.reveal() ?? settings.authToken.reveal();
    const resource = message.channel === "sms" ? "Messages" : "Calls";
    const answer = (await callJson({
      method: "POST",
      url: `${settings.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/${resource}.json`,
      headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`, ...(message.traceparent ? { traceparent: message.traceparent } : {}) },
      form,
      signal,
      classify: twilioError,
    })) as { sid?: unknown };
    if (typeof answer.sid !== "string" || !/^[A-Z]{2}[0-9a-zA-Z]{32}$/.test(answer.sid)) {
      throw new ProviderError(`Twilio's answer has no ${resource === "Messages" ? "message" : "call"} sid`, true, "bad_response", true);
    }
    return { providerMessageId: answer.sid, delivered: false };
  }
}

/** `{"code": 21211, "message": "…", "status": 400}`: Twilio's code decides, its message explains. */
function twilioError(status: number, body: unknown): ProviderError | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { code, message } = body as { code?: unknown; message?: unknown };
  if (typeof code !== "number" || !Number.isInteger(code)) return undefined;
  const text = `Twilio error ${code}${typeof message === "string" ? `: ${message.split("\n")[0]!.slice(0, 200)}` : ""} (HTTP ${status})`;
  if (status === 401 || status === 403) return new ProviderError(text, false, "auth");
  if (RETRYABLE.has(code) || status === 429 || status >= 500) return new ProviderError(text, true, `twilio_${code}`);
  return new ProviderError(text, false, `twilio_${code}`);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!);
}
