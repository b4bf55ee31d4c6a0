import type { Route } from "../domain/route.js";
import { CHANNELS } from "../domain/channel.js";
import type { RoutingConfig } from "./config-file.js";
import { DEFAULT_POLICIES } from "./default-policy.js";

/**
 * The built-in catalogue: one sandbox route per channel, every country, free,
 * and the default SMS → email → voice → push policy. A configuration file
 * (OTP_CONFIG) replaces the routes.
 */
export const SANDBOX_ROUTES: readonly Route[] = CHANNELS.map((channel) => ({
  id: `sandbox-${channel}`,
  channel,
  provider: "sandbox",
  providerRoute: `sandbox-${channel}`,
  trafficClass: "otp",
  sender: channel === "email" ? "no-reply@otp.invalid" : "OTP",
  countries: ["*"],
  currency: "EUR",
  pricesMicros: { "*": 0 },
}));

/** Routing when no configuration file is given: the sandbox routes on the one sandbox provider, the default policy. */
export const SANDBOX_ROUTING: RoutingConfig = { providers: [{ name: "sandbox", type: "sandbox" }], routes: SANDBOX_ROUTES, policies: DEFAULT_POLICIES };

export { DEFAULT_POLICIES };
