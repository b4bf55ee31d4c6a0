import { DEFAULT_POLICY, type Policy } from "../domain/plan.js";

/** The policies when the configuration file names none: SMS → email → voice → push. */
export const DEFAULT_POLICIES: ReadonlyMap<string, Policy> = new Map([[DEFAULT_POLICY.name, DEFAULT_POLICY]]);
