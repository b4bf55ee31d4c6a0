import type { ProviderSettings } from "../../../config/config-file.js";
import { callJson } from "../http-json.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";
import { accessTokenSource, type AccessTokenSource } from "./access-tokens.js";

export type FcmSettings = Extract<ProviderSettings, { type: "fcm" }>;

/**
 * Push through Firebase Cloud Messaging's HTTP v1 API:
 *
 *   POST {base}/v1/projects/{project_id}/messages:send   Authorization: Bearer <access token>
 *     {"message": {"token", "notification": {"title", "body"}, "data", "android", "apns"}}
 *     → {"name": "projects/…/messages/…"}
 *
 * FCM accepting the message is SUBMITTED; there is no delivery receipt, so
 * push steps escalate on "unverified". FCM has no idempotency key. The
 * access token comes from a service account or a file (access-tokens.ts); a
 * minted token FCM refuses is replaced and the send tried once more (a 401
 * means FCM took nothing, so nothing is sent twice).
 */
export class FcmProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;

  private readonly tokens: AccessTokenSource;

  constructor(
    private readonly settings: FcmSettings,
    now: () => number = Date.now,
  ) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
    this.tokens = accessTokenSource(settings.auth, settings.timeoutMs, now);
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    const token = await this.tokens.token();
    try {
      return await this.send(message, token, signal);
    } catch (error) {
      if (!(error instanceof ProviderError && error.code === "auth" && this.tokens.refused(token))) throw error;
      return this.send(message, await this.tokens.token(), signal);
    }
  }

  private async send(message: OutboundMessage, token: string, signal: AbortSignal): Promise<SubmitResult> {
    const answer = (await callJson({
      method: "POST",
      url: `${this.settings.baseUrl}/v1/projects/${encodeURIComponent(this.settings.projectId)}/messages:send`,
      headers: { authorization: `Bearer ${token}`, ...(message.traceparent ? { traceparent: message.traceparent } : {}) },
      body: {
        message: {
          token: message.to,
          notification: { title: message.subject ?? "", body: message.text },
          data: { verification_id: message.verificationId, attempt_id: message.attemptId },
          // A code is only useful now: high priority, and dropped when it can no longer be used.
          android: { priority: "high", ttl: "600s" },
          apns: { headers: { "apns-priority": "10", "apns-push-type": "alert" } },
        },
      },
      signal,
    })) as { name?: unknown };
    if (typeof answer.name !== "string" || answer.name === "") throw new ProviderError("FCM answer has no message name", true, "bad_response", true);
    return { providerMessageId: answer.name, delivered: false };
  }
}
