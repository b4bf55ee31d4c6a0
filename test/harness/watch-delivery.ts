import type { Client } from "@connectrpc/connect";
import type { DeliveryEvent } from "../../gen/otp/v1/common_pb.js";
import type { OtpService } from "../../gen/otp/v1/otp_service_pb.js";

/**
 * A verification's events on WatchDelivery, from its first, up to and including the first one `until` accepts.
 * Fails when the stream ends without it or `timeoutMs` passes.
 */
export async function watchUntil(
  client: Client<typeof OtpService>,
  verificationId: string,
  until: (event: DeliveryEvent) => boolean,
  options: { readonly headers: Readonly<Record<string, string>>; readonly timeoutMs?: number },
): Promise<DeliveryEvent[]> {
  const seen: DeliveryEvent[] = [];
  const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  for await (const { event } of client.watchDelivery({ verificationId }, { headers: options.headers, signal })) {
    if (event === undefined) continue;
    seen.push(event);
    if (until(event)) return seen;
  }
  throw new Error(`the stream of ${verificationId} ended without the awaited event (saw ${seen.map((e) => e.kind).join(", ")})`);
}
