import type { ProviderSettings } from "../../../config/config-file.js";
import { negotiateLocale } from "../../../domain/locale.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";
import { callJson } from "../http-json.js";

export type WhatsAppSettings = Extract<ProviderSettings, { type: "whatsapp-cloud" }>;

/**
 * Graph API error codes that say "later": the API's own trouble and throughput limits. Everything else is
 * permanent for a code that is only useful now — the number is not on WhatsApp (131026), the template is wrong or
 * paused (132xxx), the account is restricted (368, 131031), the sender is rate limited to this person (131056) or
 * for its quality (131048) — so the plan moves on to its next channel at once.
 */
const RETRYABLE = new Set([1, 2, 4, 80007, 130429, 131000, 131016, 131057]);
/** Access token expired or revoked, or a permission missing: a configuration problem, never fixed by retrying. */
const AUTH = new Set([0, 3, 10, 190]);

/**
 * WhatsApp through Meta's Cloud API (or a compatible provider at `base_url`), an authentication template with the
 * code as its body parameter and its copy-code / one-tap button's parameter:
 *
 *   POST {base}/{phone-number-id}/messages   Authorization: Bearer <token>
 *     {"messaging_product": "whatsapp", "to", "type": "template", "template": {"name", "language": {"code"},
 *      "components": [{"type": "body", …code}, {"type": "button", "sub_type": "url", "index": "0", …code}]}}
 *     → {"messages": [{"id": "wamid.…"}]}
 *
 * The route's sender is the business phone number's id; the template language is the best of the approved ones
 * for the request's locale. Statuses come by webhook (whatsapp-receipts.ts). No idempotency key exists: a send
 * whose answer was lost is ambiguous.
 */
export class WhatsAppProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;

  constructor(private readonly settings: WhatsAppSettings) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    if (message.channel !== "whatsapp") throw new ProviderError(`WhatsApp sends whatsapp, not ${message.channel}`, false, "unsupported_channel");
    const { template } = this.settings;
    const code = [{ type: "text", text: message.text }];
    const answer = (await callJson({
      method: "POST",
      url: `${this.settings.baseUrl}/${encodeURIComponent(message.sender)}/messages`,
      headers: { authorization: `Bearer ${this.settings.accessToken.reveal()}`, ...(message.traceparent ? { traceparent: message.traceparent } : {}) },
      body: {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to: message.to,
        type: "template",
        template: {
          name: template.name,
          language: { code: templateLanguage(message.locale, template.languages) },
          components: [
            { type: "body", parameters: code },
            { type: "button", sub_type: "url", index: "0", parameters: code },
          ],
        },
      },
      signal,
      classify: graphError,
    })) as { messages?: unknown };
    const id = Array.isArray(answer.messages) ? (answer.messages[0] as { id?: unknown } | undefined)?.id : undefined;
    if (typeof id !== "string" || !/^[\x21-\x7e]{1,256}$/.test(id)) {
      throw new ProviderError("WhatsApp's answer has no message id", true, "bad_response", true);
    }
    return { providerMessageId: id, delivered: false };
  }
}

/** The approved language closest to the request's locale ("nl-BE" → "nl", "pt-BR" → "pt_BR"), else the first. */
export function templateLanguage(locale: string | undefined, languages: readonly [string, ...string[]]): string {
  const tags = languages.map((l) => l.replace("_", "-")) as [string, ...string[]];
  return languages[tags.indexOf(negotiateLocale(locale, tags))] ?? languages[0];
}

/** `{"error": {"code": 131026, "message": "…", "error_data": {"details": "…"}}}`: the code decides, the text explains. */
function graphError(status: number, body: unknown): ProviderError | undefined {
  const error = typeof body === "object" && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message, error_data: data } = error as { code?: unknown; message?: unknown; error_data?: { details?: unknown } };
  if (typeof code !== "number" || !Number.isInteger(code)) return undefined;
  const details = typeof data?.details === "string" ? data.details : typeof message === "string" ? message : "";
  const text = `WhatsApp error ${code}${details ? `: ${details.split("\n")[0]!.slice(0, 200)}` : ""} (HTTP ${status})`;
  if (AUTH.has(code) || (code >= 200 && code <= 299) || status === 401) return new ProviderError(text, false, "auth");
  if (RETRYABLE.has(code) || status >= 500) return new ProviderError(text, true, `whatsapp_${code}`);
  return new ProviderError(text, false, `whatsapp_${code}`);
}
