import { createHash } from "node:crypto";
import type { PlanInput } from "./plan-request.js";

/**
 * SHA-256 of a request with object keys and map entries sorted, so the same
 * request always hashes the same: how a reused idempotency key is checked
 * against its first request.
 */
export function canonicalHash(value: unknown): string {
  const canonical = JSON.stringify(value, (_key, value: unknown) => {
    if (value instanceof Map) return Object.fromEntries([...value.entries()].sort());
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
    }
    return value;
  });
  return createHash("sha256").update(canonical).digest("hex");
}

/** The hash of the part of a request a plan is made from: what binds an estimate to a send. */
export function hashPlanInput(input: PlanInput): string {
  const { destination, policy, channels, overrides, render, codeLength } = input;
  return canonicalHash({ destination, policy, channels, overrides, render, codeLength });
}
