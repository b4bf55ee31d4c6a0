import type { ProviderSettings } from "../../../config/config-file.js";
import { callJson } from "../http-json.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";

export type HttpRouteSettings = Extract<ProviderSettings, { type: "http-route" }>;

/** What the provider quotes for a message before it is sent. */
export interface HttpRouteEstimate {
  readonly estimatedCost: number;
  readonly currency: string;
  readonly balance: number;
  readonly sufficientBalance: boolean;
}

/**
 * SMS through a route-based HTTP API (BridgeXAPI style): the caller names the
 * upstream route and sender on every send.
 *
 *   POST {base}/api/v1/send_sms   X-API-KEY   {"route_id","caller_id","numbers":[…],"message"}
 *     → {"messages":[{"bx_message_id", …}], …}
 *   POST {base}/api/v1/estimate   same body  → {"estimated_cost","currency","balance","sufficient_balance"}
 *
 * With `idempotency_key: true` the attempt id goes in `Idempotency-Key`, so a
 * send repeated after a worker crash is answered with the first message id.
 */
export class HttpRouteProvider implements Provider {
  readonly name: string;
  readonly idempotent: boolean;
  readonly timeoutMs: number;
  readonly firstPollAfterMs?: number;

  constructor(private readonly settings: HttpRouteSettings) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
    this.idempotent = settings.idempotencyKey;
    if (settings.receipts === "poll" || settings.receipts === "both") this.firstPollAfterMs = settings.pollIntervalMs;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    const answer = await callJson({
      method: "POST",
      url: `${this.settings.baseUrl}/api/v1/send_sms`,
      headers: {
        ...this.authHeaders(),
        ...(this.idempotent ? { "idempotency-key": message.attemptId } : {}),
        ...(message.traceparent ? { traceparent: message.traceparent } : {}),
      },
      body: smsBody(message),
      signal,
    });
    const id = (answer as { messages?: Array<{ bx_message_id?: unknown }> }).messages?.[0]?.bx_message_id;
    if (typeof id !== "string" && typeof id !== "number") {
      // Accepted but unreadable: it may well go out, so never repeat it blindly.
      throw new ProviderError("send_sms answer has no messages[0].bx_message_id", true, "bad_response", true);
    }
    return { providerMessageId: String(id), delivered: false };
  }

  async estimate(message: OutboundMessage, signal: AbortSignal): Promise<HttpRouteEstimate> {
    const answer = (await callJson({
      method: "POST",
      url: `${this.settings.baseUrl}/api/v1/estimate`,
      headers: this.authHeaders(),
      body: smsBody(message),
      signal,
    })) as Record<string, unknown>;
    const { estimated_cost: cost, currency, balance, sufficient_balance: sufficient } = answer;
    if (typeof cost !== "number" || typeof currency !== "string" || typeof balance !== "number" || typeof sufficient !== "boolean") {
      throw new ProviderError("estimate answer lacks estimated_cost, currency, balance or sufficient_balance", true, "bad_response");
    }
    return { estimatedCost: cost, currency, balance, sufficientBalance: sufficient };
  }

  private authHeaders(): Record<string, string> {
    return { "x-api-key": this.settings.apiKey.reveal() };
  }
}

function smsBody(message: OutboundMessage) {
  return { route_id: message.providerRoute, caller_id: message.sender, numbers: [message.to], message: message.text };
}
