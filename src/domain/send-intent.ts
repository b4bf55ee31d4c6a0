/**
 * What a worker does with a QUEUED attempt, given what an earlier try left behind.
 *
 * - "send": no earlier call may have reached the provider, or the provider drops a
 *   repeat with the same attempt id (idempotency key), so sending again is safe.
 * - "wait": an earlier call started less than the provider timeout ago and may still
 *   be running in another worker; look again later.
 * - "give-up": an earlier call may have reached a provider that cannot de-duplicate;
 *   a second call could deliver a second message, so the attempt fails instead and
 *   the fallback plan moves on.
 */
export type SendDecision = { readonly kind: "send" } | { readonly kind: "wait"; readonly delayMs: number } | { readonly kind: "give-up" };

export function decideSend(earlierStart: Date | null, now: Date, providerTimeoutMs: number, idempotent: boolean): SendDecision {
  if (earlierStart === null) return { kind: "send" };
  const sinceMs = now.getTime() - earlierStart.getTime();
  // The earlier call ends by its timeout; a second of slack covers clock skew between workers.
  const settledAfterMs = providerTimeoutMs + 1_000;
  if (sinceMs < settledAfterMs) return { kind: "wait", delayMs: settledAfterMs - sinceMs };
  return idempotent ? { kind: "send" } : { kind: "give-up" };
}
