import type { RandomSource } from "../domain/ports.js";

/** W3C trace context of one operation. */
export interface TraceContext {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** The `traceparent` header value. */
  readonly traceparent: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Continues the caller's trace when it sent a valid `traceparent`, otherwise
 * starts a new one; either way with a fresh span id for this operation.
 */
export function continueOrStartTrace(traceparent: string | null | undefined, random: RandomSource): TraceContext {
  const match = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  const traceId =
    match?.[1] && !/^0+$/.test(match[1]) ? match[1] : random.bytes(16).toString("hex");
  const spanId = random.bytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}
