import type { Channel } from "../domain/channel.js";
import type { Destination } from "../domain/destination.js";
import { PreconditionError } from "../domain/errors.js";
import type { RenderOptions } from "../domain/message.js";
import { planVerification, type Plan } from "../domain/plan.js";
import type { Caller, Catalogue } from "./deps.js";

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

/** Plans with the named policy, limited to the channels the caller may use. */
export function planFor(catalogue: Catalogue, caller: Caller, input: PlanInput): Plan {
  const policy = catalogue.policies.get(input.policy || "default");
  if (policy === undefined) throw new PreconditionError(`policy "${input.policy}" does not exist`);
  const plan = planVerification({
    destination: input.destination,
    policy,
    ...(input.channels ? { channelOrder: input.channels } : {}),
    ...(input.overrides ? { overrides: input.overrides } : {}),
    routes: catalogue.routes,
    render: input.render,
    codeLength: input.codeLength,
  });
  const allowed = caller.channels;
  const steps = allowed ? plan.steps.filter((s) => allowed.includes(s.channel)).map((s, index) => ({ ...s, index })) : plan.steps;
  if (steps.length === 0) {
    throw new PreconditionError("no step of the plan can be sent: no usable channel and route for this destination");
  }
  return { steps, warnings: plan.warnings };
}
