import { readFile } from "node:fs/promises";
import type { ProviderSettings } from "../../../config/config-file.js";
import { callJson } from "../http-json.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";

export type FcmSettings = Extract<ProviderSettings, { type: "fcm" }>;

/**
 * Push through Firebase Cloud Messaging's HTTP v1 API:
 *
 *   POST {base}/v1/projects/{project_id}/messages:send   Authorization: Bearer <access token>
 *     {"message": {"token", "notification": {"title", "body"}, "data", "android", "apns"}}
 *     → {"name": "projects/…/messages/…"}
 *
 * FCM accepting the message is SUBMITTED; there is no delivery receipt, so
 * push steps escalate on "unverified". FCM has no idempotency key.
 */
export class FcmProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;

  constructor(private readonly settings: FcmSettings) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    let token: string;
    try {
      token = (await readFile(this.settings.accessTokenFile, "utf8")).trim();
    } catch (error) {
      throw new ProviderError(`cannot read the FCM access token file (${(error as NodeJS.ErrnoException).code ?? "error"})`, true, "credential", false);
    }
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
