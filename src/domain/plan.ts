import type { Channel } from "./channel.js";
import { addressFor, maskAddress, phoneCountry, type Destination } from "./destination.js";
import { PreconditionError } from "./errors.js";
import { renderSms, type RenderOptions } from "./message.js";
import { servesCountry, unitPriceMicros, type Route } from "./route.js";
import type { SmsEncoding } from "./sms-text.js";

export type EscalateWhen = "undelivered" | "unverified";

/** One step of a fallback policy. */
export interface PolicyStep {
  readonly channel: Channel;
  /** How long to wait for the escalation condition before the next step. */
  readonly deadlineMs: number;
  readonly escalateWhen: EscalateWhen;
}

export interface Policy {
  readonly name: string;
  readonly steps: readonly PolicyStep[];
}

/** SMS first; the next channel when SMS is not delivered in 15 s, or the code is not used in 30 s. */
export const DEFAULT_POLICY: Policy = {
  name: "default",
  steps: [
    { channel: "sms", deadlineMs: 15_000, escalateWhen: "undelivered" },
    { channel: "email", deadlineMs: 30_000, escalateWhen: "unverified" },
    { channel: "voice", deadlineMs: 30_000, escalateWhen: "unverified" },
    { channel: "push", deadlineMs: 30_000, escalateWhen: "unverified" },
  ],
};

/** A step of one verification's plan: where, how, and at what price. */
export interface PlannedStep {
  readonly index: number;
  readonly channel: Channel;
  readonly routeId: string;
  readonly provider: string;
  readonly sender: string;
  readonly address: string;
  readonly addressMasked: string;
  readonly deadlineMs: number;
  readonly escalateWhen: EscalateWhen;
  readonly encoding?: SmsEncoding;
  readonly segments: number;
  readonly currency: string;
  readonly unitPriceMicros: number;
  readonly totalPriceMicros: number;
}

export interface PlanRequest {
  readonly destination: Destination;
  readonly policy: Policy;
  /** Caller-supplied channel order; replaces the policy's order, keeping each channel's step settings. */
  readonly channelOrder?: readonly Channel[];
  readonly overrides?: ReadonlyMap<Channel, { readonly routeId?: string; readonly sender?: string }>;
  readonly routes: readonly Route[];
  readonly render: RenderOptions;
  readonly codeLength: number;
}

export interface Plan {
  readonly steps: readonly PlannedStep[];
  readonly warnings: readonly string[];
}

/**
 * Turns a policy and a destination into concrete steps. Steps whose channel
 * has no address are skipped; a pinned route must exist, carry OTP traffic,
 * be on the step's channel and serve the destination's country.
 */
export function planVerification(request: PlanRequest): Plan {
  const warnings: string[] = [];
  const steps: PlannedStep[] = [];
  for (const policyStep of orderedSteps(request.policy, request.channelOrder)) {
    const address = addressFor(request.destination, policyStep.channel);
    if (address === undefined) continue;
    const country = policyStep.channel === "sms" || policyStep.channel === "voice" ? phoneCountry(address) : undefined;
    const override = request.overrides?.get(policyStep.channel);
    const route = override?.routeId
      ? pinnedRoute(request.routes, override.routeId, policyStep.channel, country)
      : request.routes.find((r) => r.channel === policyStep.channel && r.trafficClass === "otp" && servesCountry(r, country));
    if (route === undefined) {
      warnings.push(`no OTP route serves ${policyStep.channel}${country ? ` to ${country}` : ""}; step skipped`);
      continue;
    }
    const unit = unitPriceMicros(route, country);
    if (unit === undefined) {
      warnings.push(`route ${route.id} has no price for ${country ?? "this destination"}; step skipped`);
      continue;
    }
    let encoding: SmsEncoding | undefined;
    let segments = 1;
    if (policyStep.channel === "sms") {
      const sample = renderSms("0".repeat(request.codeLength), request.render);
      encoding = sample.encoding;
      segments = sample.segments;
      warnings.push(...sample.warnings);
    }
    steps.push({
      index: steps.length,
      channel: policyStep.channel,
      routeId: route.id,
      provider: route.provider,
      sender: override?.sender || route.sender,
      address,
      addressMasked: maskAddress(address),
      deadlineMs: policyStep.deadlineMs,
      escalateWhen: policyStep.escalateWhen,
      ...(encoding ? { encoding } : {}),
      segments,
      currency: route.currency,
      unitPriceMicros: unit,
      totalPriceMicros: unit * segments,
    });
  }
  return { steps, warnings };
}

function orderedSteps(policy: Policy, channelOrder: readonly Channel[] | undefined): PolicyStep[] {
  if (!channelOrder?.length) return [...policy.steps];
  return channelOrder.map(
    (channel) =>
      policy.steps.find((s) => s.channel === channel) ?? { channel, deadlineMs: 30_000, escalateWhen: "unverified" },
  );
}

function pinnedRoute(routes: readonly Route[], routeId: string, channel: Channel, country: string | undefined): Route {
  const route = routes.find((r) => r.id === routeId);
  if (route === undefined) throw new PreconditionError(`route ${routeId} does not exist`);
  if (route.channel !== channel) throw new PreconditionError(`route ${routeId} is a ${route.channel} route, not ${channel}`);
  if (route.trafficClass !== "otp") {
    throw new PreconditionError(`route ${routeId} carries ${route.trafficClass} traffic; OTP needs an otp route`);
  }
  if (!servesCountry(route, country)) throw new PreconditionError(`route ${routeId} does not serve ${country ?? "this destination"}`);
  return route;
}
