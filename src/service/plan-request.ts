import type { Channel } from "../domain/channel.js";
import { maskAddress, phoneCountry, refusedNumberKind, type Destination } from "../domain/destination.js";
import { PreconditionError } from "../domain/errors.js";
import type { RenderOptions } from "../domain/message.js";
import { planVerification, type Plan } from "../domain/plan.js";
import { DEFAULT_LIMITS } from "../domain/limits.js";
import { SHIPPED_CATALOGUE, type MessageCatalogue } from "../domain/messages/catalogue.js";
import type { RouteHealth } from "../domain/route.js";
import type { Caller, Catalogue, ServiceDeps } from "./deps.js";

function checkPhone(caller: Caller, phone: string): void {
  const kind = refusedNumberKind(phone);
  if (kind !== undefined) throw new PreconditionError(`${maskAddress(phone)} is a ${kind} number: codes are not sent to premium-rate, shared-cost or VoIP numbers`);
  const country = phoneCountry(phone);
  if (caller.countries !== undefined && (country === undefined || !caller.countries.includes(country))) {
    throw new PreconditionError(`sending to ${country ?? "this number's country"} is not allowed for caller ${caller.id}`);
  }
}

/** What EstimateOtp and SendOtp both plan from. */
export interface PlanInput {
  readonly destination: Destination;
  /** Policy name; "default" when empty. */
  readonly policy: string;
  readonly channels?: readonly Channel[];
  readonly overrides?: ReadonlyMap<Channel, { readonly routeId?: string; readonly sender?: string }>;
  readonly render: RenderOptions;
  readonly codeLength: number;
}

/** What planning reads besides the catalogue: routes' health, pumping blocks, the prefix length, chance. */
export interface PlanningState {
  readonly health?: ((routeId: string) => RouteHealth | undefined) | undefined;
  readonly phoneBlocked?: ((phone: string) => string | undefined) | undefined;
  readonly numberPrefixDigits?: number;
  /** Uniform in [0, 1): decides the probes of half-open routes. */
  readonly roll?: () => number;
  /** The message texts (the SMS step's segments depend on them); the shipped ones when unset. */
  readonly messages?: MessageCatalogue | undefined;
}

/** The planning state of a running service. */
export function planningState(deps: ServiceDeps): PlanningState {
  return {
    health: deps.routeHealth,
    phoneBlocked: deps.phoneBlocked,
    numberPrefixDigits: deps.limits.numberPrefixDigits,
    roll: () => deps.random.int(1_000_000) / 1_000_000,
    messages: deps.messages,
  };
}

/**
 * Plans with the named policy, limited to the channels and routes the caller
 * may use. Refuses phone numbers in countries the caller may not send to, and
 * premium-rate, shared-cost and VoIP numbers; leaves out SMS and calls to
 * numbers whose prefix is blocked as SMS pumping.
 */
export function planFor(catalogue: Catalogue, caller: Caller, input: PlanInput, state: PlanningState = {}): Plan {
  const policy = catalogue.policies.get(input.policy || "default");
  if (policy === undefined) throw new PreconditionError(`policy "${input.policy}" does not exist`);
  for (const phone of new Set([input.destination.phone, input.destination.voicePhone])) {
    if (phone) checkPhone(caller, phone);
  }
  const plan = planVerification({
    destination: input.destination,
    policy,
    ...(input.channels ? { channelOrder: input.channels } : {}),
    ...(input.overrides ? { overrides: input.overrides } : {}),
    routes: catalogue.routes,
    ...(caller.routes ? { allowedRoutes: caller.routes } : {}),
    ...(caller.senders ? { allowedSenders: caller.senders } : {}),
    ...(state.health ? { health: state.health } : {}),
    ...(state.roll ? { roll: state.roll } : {}),
    ...(state.phoneBlocked ? { phoneBlocked: state.phoneBlocked } : {}),
    render: input.render,
    texts: (state.messages ?? SHIPPED_CATALOGUE).texts(input.render.locale, caller.id),
    codeLength: input.codeLength,
    numberPrefixDigits: state.numberPrefixDigits ?? DEFAULT_LIMITS.numberPrefixDigits,
  });
  const allowed = caller.channels;
  const steps = allowed ? plan.steps.filter((s) => allowed.includes(s.channel)).map((s, index) => ({ ...s, index })) : plan.steps;
  if (steps.length === 0) {
    const phone = input.destination.voicePhone || input.destination.phone;
    const blocked = phone ? state.phoneBlocked?.(phone) : undefined;
    throw new PreconditionError(`no step of the plan can be sent: ${blocked ?? "no usable channel and route for this destination"}`);
  }
  return { steps, warnings: plan.warnings };
}
