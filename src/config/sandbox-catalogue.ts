import { DEFAULT_POLICY, type Policy } from "../domain/plan.js";
import type { Route } from "../domain/route.js";
import { CHANNELS } from "../domain/channel.js";

/**
 * The built-in catalogue: one sandbox route per channel, every country, free,
 * and the default SMS → email → voice → push policy. Configured routes and
 * policies replace it once the routing configuration exists.
 */
export const SANDBOX_ROUTES: readonly Route[] = CHANNELS.map((channel) => ({
  id: `sandbox-${channel}`,
  channel,
  provider: "sandbox",
  trafficClass: "otp",
  sender: channel === "email" ? "no-reply@otp.invalid" : "OTP",
  countries: ["*"],
  currency: "EUR",
  pricesMicros: { "*": 0 },
}));

export const DEFAULT_POLICIES: ReadonlyMap<string, Policy> = new Map([[DEFAULT_POLICY.name, DEFAULT_POLICY]]);
