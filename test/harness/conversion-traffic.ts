import { recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import type { Caller, ServiceDeps } from "../../src/service/deps.js";
import { sendOtp, type SendOtpResult } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { newTrace, sendCommand } from "./service-fixture.js";

/**
 * One verification as conversion sees it: sent to `phone` (through `routeId` when given, on `policy`), accepted by
 * the provider (with a DELIVERED receipt at once when `delivered`), and approved with its code when `approve`.
 */
export async function convertOnce(
  deps: ServiceDeps,
  caller: Caller,
  phone: string,
  options: { readonly approve: boolean; readonly routeId?: string; readonly delivered?: boolean; readonly policy?: string },
): Promise<SendOtpResult> {
  const overrides = options.routeId ? new Map([["sms" as const, { routeId: options.routeId }]]) : undefined;
  const command = sendCommand({ destination: { phone }, policy: options.policy ?? "", ...(overrides ? { overrides } : {}) });
  const sent = await sendOtp(deps, caller, command, newTrace());
  const attempt = (await findAttempt(deps.db, sent.firstAttempt.id))!;
  await recordSubmitted(deps, attempt, { providerMessageId: `conv-${attempt.id}`, delivered: options.delivered ?? false, firstPollAt: null });
  if (options.approve) {
    const code = deps.protector.unseal(sent.verification.id, attempt.sealed_code!);
    const checked = await verifyOtp(deps, caller, sent.verification.id, code);
    if (checked.outcome !== "APPROVED") throw new Error(`expected APPROVED, got ${checked.outcome}`);
  }
  return sent;
}
