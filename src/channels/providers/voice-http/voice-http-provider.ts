import type { ProviderSettings } from "../../../config/config-file.js";
import { callJson } from "../http-json.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";

export type VoiceHttpSettings = Extract<ProviderSettings, { type: "voice-http" }>;

/**
 * Voice calls through an HTTP call API that speaks a text (Twilio-like, JSON):
 *
 *   POST {base}/v1/calls   Authorization: Bearer <api key>
 *     {"to", "from", "tts": {"text", "language"}, "status_callback", "client_reference"}
 *     → {"call_id", "status": "queued"}
 *
 * The text says the code's digits one by one, twice, in the request's language
 * (rendered by the worker; `language` is its BCP 47 tag with region, "nl-NL").
 * Call status (completed, no-answer, busy, failed) comes back as a signed
 * webhook, our delivery receipt for voice.
 */
export class VoiceHttpProvider implements Provider {
  readonly name: string;
  readonly idempotent: boolean;
  readonly timeoutMs: number;

  constructor(private readonly settings: VoiceHttpSettings) {
    this.name = settings.name;
    this.idempotent = settings.idempotencyKey;
    this.timeoutMs = settings.timeoutMs;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    const answer = (await callJson({
      method: "POST",
      url: `${this.settings.baseUrl}/v1/calls`,
      headers: {
        authorization: `Bearer ${this.settings.apiKey.reveal()}`,
        ...(this.idempotent ? { "idempotency-key": message.attemptId } : {}),
        ...(message.traceparent ? { traceparent: message.traceparent } : {}),
      },
      body: {
        to: message.to,
        from: message.sender,
        tts: { text: message.text, language: message.voiceLanguage ?? "en-US" },
        ...(this.settings.statusCallbackUrl ? { status_callback: this.settings.statusCallbackUrl } : {}),
        client_reference: message.attemptId,
      },
      signal,
    })) as { call_id?: unknown };
    if (typeof answer.call_id !== "string" || answer.call_id === "") {
      throw new ProviderError("call answer has no call_id", true, "bad_response", true);
    }
    return { providerMessageId: answer.call_id, delivered: false };
  }
}
