import { isPhoneChannel, type Channel } from "./channel.js";
import { addressFor, maskAddress, numberPrefix, phoneCountry, type Destination } from "./destination.js";
import { PreconditionError } from "./errors.js";
import { renderSms, type RenderOptions } from "./message.js";
import type { LocalizedTexts } from "./messages/catalogue.js";
import { chooseRoute, senderAllowed, servesCountry, unitPriceMicros, type Route, type RouteHealth } from "./route.js";
import type { SmsEncoding } from "./sms-text.js";

export type EscalateWhen = "undelivered" | "unverified";

/** One step of a fallback policy. */
export interface PolicyStep {
  readonly channel: Channel;
  /** How long to wait for the escalation condition before the next step (with `autoDeadline`: until measured). */
  readonly deadlineMs: number;
  /** `deadline: auto`: the route's measured receipt latency decides, within these bounds (see `stepDeadline`). */
  readonly autoDeadline?: { readonly minMs: number; readonly maxMs: number };
  readonly escalateWhen: EscalateWhen;
  /** The route this step uses; any OTP route of the channel serving the country when unset. */
  readonly routeId?: string;
  /** A later step on a channel already used in this verification waits this long after that send, or is skipped. */
  readonly cooldownMs?: number;
}

export interface Policy {
  readonly name: string;
  readonly steps: readonly PolicyStep[];
  /** Steps that replace `steps` for destinations in a country (ISO 3166-1 alpha-2 of the phone number). */
  readonly countrySteps?: ReadonlyMap<string, readonly PolicyStep[]>;
}

/** When a channel may be used again in the same verification: one send per channel unless a step says otherwise. */
export const DEFAULT_COOLDOWN_MS = 60_000;

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
  readonly cooldownMs: number;
  readonly encoding?: SmsEncoding;
  readonly segments: number;
  readonly currency: string;
  readonly unitPriceMicros: number;
  readonly totalPriceMicros: number;
  /** ISO 3166-1 alpha-2 of the destination's phone number, if it has one (every step's: metrics group by it). */
  readonly country?: string;
  /** The phone number's prefix (see `numberPrefix`), if it has one: conversion and pumping are counted by it. */
  readonly numberPrefix?: string;
}

export interface PlanRequest {
  readonly destination: Destination;
  readonly policy: Policy;
  /** Caller-supplied channel order; replaces the policy's order, keeping each channel's step settings. */
  readonly channelOrder?: readonly Channel[];
  readonly overrides?: ReadonlyMap<Channel, { readonly routeId?: string; readonly sender?: string }>;
  readonly routes: readonly Route[];
  /** Route ids the caller may use; every route when undefined. */
  readonly allowedRoutes?: readonly string[];
  /** Senders the caller may name in overrides besides each route's own. */
  readonly allowedSenders?: readonly string[];
  readonly health?: (routeId: string) => RouteHealth | undefined;
  /** Uniform in [0, 1), drawn when a half-open route's probe share decides (see `chooseRoute`); never probes when unset. */
  readonly roll?: () => number;
  /** Why SMS and calls to this number are refused (its prefix is blocked as SMS pumping), if they are. */
  readonly phoneBlocked?: (phone: string) => string | undefined;
  readonly render: RenderOptions;
  /** The texts the messages will be rendered with (the request's language, the caller's replacements). */
  readonly texts?: LocalizedTexts;
  readonly codeLength: number;
  /** Digits of the phone number kept as its prefix (`numberPrefix`). */
  readonly numberPrefixDigits: number;
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
  const phoneCountryCode = request.destination.phone ? phoneCountry(request.destination.phone) : undefined;
  const policySteps = (phoneCountryCode && request.policy.countrySteps?.get(phoneCountryCode)) || request.policy.steps;
  for (const policyStep of orderedSteps(policySteps, request.channelOrder)) {
    const address = addressFor(request.destination, policyStep.channel);
    if (address === undefined) continue;
    const toPhone = isPhoneChannel(policyStep.channel);
    const blocked = toPhone ? request.phoneBlocked?.(address) : undefined;
    if (blocked !== undefined) {
      warnings.push(`${policyStep.channel} step skipped: ${blocked}`);
      continue;
    }
    const country = toPhone ? phoneCountry(address) : undefined;
    const override = request.overrides?.get(policyStep.channel);
    const route = override?.routeId
      ? pinnedRoute(request, override.routeId, policyStep.channel, country)
      : policyRoute(request, policyStep, country, phoneCountryCode ?? "", warnings);
    if (route === undefined) continue;
    if (override?.sender && !senderAllowed(route, override.sender, request.allowedSenders)) {
      throw new PreconditionError(`sender "${override.sender}" is not allowed on route ${route.id} for this caller`);
    }
    const unit = unitPriceMicros(route, country);
    if (unit === undefined) {
      warnings.push(`route ${route.id} has no price for ${country ?? "this destination"}; step skipped`);
      continue;
    }
    let encoding: SmsEncoding | undefined;
    let segments = 1;
    if (policyStep.channel === "sms") {
      const sample = renderSms("0".repeat(request.codeLength), request.render, request.texts);
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
      deadlineMs: stepDeadline(policyStep, request.health?.(route.id), country),
      escalateWhen: policyStep.escalateWhen,
      cooldownMs: policyStep.cooldownMs ?? DEFAULT_COOLDOWN_MS,
      segments,
      currency: route.currency,
      unitPriceMicros: unit,
      totalPriceMicros: unit * segments,
      ...(encoding ? { encoding } : {}),
      ...(phoneCountryCode ? { country: phoneCountryCode } : {}),
      ...(request.destination.phone ? { numberPrefix: numberPrefix(request.destination.phone, request.numberPrefixDigits) } : {}),
    });
  }
  return { steps, warnings };
}

/**
 * A step's deadline: its fixed one; with `deadline: auto`, the p95 delivery-receipt latency of its route to the
 * destination's country (the route's over all countries while that country has too few receipts), within the
 * step's bounds — so a slow route that works is waited for, and a fast one that lost a message is left soon.
 * Nothing measured yet: the upper bound (no needless fallback on a route nobody has data on).
 */
export function stepDeadline(step: PolicyStep, health: RouteHealth | undefined, country: string | undefined): number {
  if (step.autoDeadline === undefined) return step.deadlineMs;
  const measured = (country !== undefined ? health?.p95LatencyMsByCountry?.get(country) : undefined) ?? health?.p95LatencyMs;
  if (measured === undefined) return step.autoDeadline.maxMs;
  return Math.min(step.autoDeadline.maxMs, Math.max(step.autoDeadline.minMs, measured));
}

function usable(request: PlanRequest, route: Route, channel: Channel, country: string | undefined): boolean {
  return (
    route.channel === channel &&
    route.trafficClass === "otp" &&
    servesCountry(route, country) &&
    (request.allowedRoutes === undefined || request.allowedRoutes.includes(route.id))
  );
}

/**
 * The policy step's own route, or the first healthy OTP route for the channel and country whose conversion to the
 * destination's country (`conversionCountry`, the phone number's: what conversion is counted by) admits the plan.
 */
function policyRoute(request: PlanRequest, step: PolicyStep, country: string | undefined, conversionCountry: string, warnings: string[]): Route | undefined {
  const where = `${step.channel}${country ? ` to ${country}` : ""}`;
  if (step.routeId !== undefined) {
    const route = request.routes.find((r) => r.id === step.routeId);
    if (route !== undefined && usable(request, route, step.channel, country)) return route;
    warnings.push(`the policy's route ${step.routeId} cannot carry ${where} for this caller; step skipped`);
    return undefined;
  }
  const chosen = chooseRoute(
    request.routes.filter((r) => usable(request, r, step.channel, country)),
    request.health ?? (() => undefined),
    conversionCountry,
    request.roll ?? (() => 1),
  );
  if (chosen === undefined) {
    warnings.push(`no OTP route serves ${where}; step skipped`);
    return undefined;
  }
  if (chosen.unhealthy) warnings.push(`every route for ${where} is unhealthy or passed over (${chosen.passedOver.join("; ")}); using ${chosen.route.id}`);
  else warnings.push(...chosen.passedOver);
  return chosen.route;
}

function orderedSteps(steps: readonly PolicyStep[], channelOrder: readonly Channel[] | undefined): PolicyStep[] {
  if (!channelOrder?.length) return [...steps];
  return channelOrder.map(
    (channel) => steps.find((s) => s.channel === channel) ?? { channel, deadlineMs: 30_000, escalateWhen: "unverified" },
  );
}

function pinnedRoute(request: PlanRequest, routeId: string, channel: Channel, country: string | undefined): Route {
  const route = request.routes.find((r) => r.id === routeId);
  if (route === undefined) throw new PreconditionError(`route ${routeId} does not exist`);
  if (route.channel !== channel) throw new PreconditionError(`route ${routeId} is a ${route.channel} route, not ${channel}`);
  if (route.trafficClass !== "otp") {
    throw new PreconditionError(`route ${routeId} carries ${route.trafficClass} traffic; OTP needs an otp route`);
  }
  if (!servesCountry(route, country)) throw new PreconditionError(`route ${routeId} does not serve ${country ?? "this destination"}`);
  if (request.allowedRoutes !== undefined && !request.allowedRoutes.includes(routeId)) {
    throw new PreconditionError(`route ${routeId} is not allowed for this caller`);
  }
  return route;
}
