import {
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { RandomSource } from "../domain/ports.js";
import { continueOrStartTrace, type TraceContext } from "./trace-context.js";

/**
 * The service's own spans. Without an OpenTelemetry SDK (no `OTEL_*`
 * exporter set) every call here is the API's no-op: nothing is recorded, and
 * the trace context stored with verifications and attempts is made by
 * `continueOrStartTrace` as before.
 */
const tracer = trace.getTracer("otp-orchestrator");
/** W3C parsing that works with or without an SDK (the global propagator is a no-op without one). */
const w3c = new W3CTraceContextPropagator();

/** Attribute keys of this service (README: Observability). Never the code, a full address or a token. */
export const ATTR = {
  verificationId: "otp.verification_id",
  attemptId: "otp.attempt_id",
  estimateId: "otp.estimate_id",
  channel: "otp.channel",
  routeId: "otp.route_id",
  provider: "otp.provider",
  providerMessageId: "otp.provider_message_id",
  status: "otp.status",
  fallbackReason: "otp.fallback.reason",
  priceMicros: "otp.price_micros",
} as const;

export { SpanKind };

/** A context whose parent is the given `traceparent` (stored with an attempt, or sent on a message); `base` when absent or invalid. */
export function contextOf(traceparent: string | null | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!traceparent) return base;
  return w3c.extract(base, { traceparent }, { get: (carrier, key) => carrier[key as "traceparent"], keys: () => ["traceparent"] });
}

/**
 * The parent of an RPC's span: the server span the grpc-js instrumentation
 * or the Connect interceptor made, else the caller's `traceparent` header.
 */
export function rpcParent(traceparentHeader: string | null): Context {
  const active = context.active();
  return trace.getSpan(active) !== undefined ? active : contextOf(traceparentHeader, active);
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent; the active context when absent. */
  readonly parent?: Context;
  /** Links the span to the active one (the request that brought this work, when the parent is stored context). */
  readonly linkActive?: boolean;
}

/** Runs `work` in a new active span; a throw marks the span as an error. */
export async function inSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  const active = options.linkActive ? trace.getActiveSpan()?.spanContext() : undefined;
  return tracer.startActiveSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
      ...(active && isSpanContextValid(active) ? { links: [{ context: active }] } : {}),
    },
    options.parent ?? context.active(),
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * A span for one item of a set-based step (an escalation or an expiry in a
 * batch written by one statement): started and ended at once, under the
 * item's stored trace context, so each verification's trace shows it.
 */
export function markSpan(name: string, traceparent: string | null | undefined, attributes: Attributes, random: RandomSource): TraceContext {
  const parent = contextOf(traceparent);
  const span = tracer.startSpan(name, { attributes }, parent);
  span.end();
  const own = ownSpanContext(span, parent);
  return own !== undefined ? fromSpanContext(own) : continueOrStartTrace(traceparent, random);
}

/** Adds attributes to the active span (a no-op without one). */
export function annotate(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

/** The span's `traceparent` when an SDK made it, else undefined. */
export function ownTraceparent(span: Span, parent: Context): string | undefined {
  const own = ownSpanContext(span, parent);
  return own === undefined ? undefined : fromSpanContext(own).traceparent;
}

/**
 * The span's own context when an SDK made it: its id differs from the
 * parent's (the API alone hands back the parent's context, or an invalid one).
 */
function ownSpanContext(span: Span, parent: Context): SpanContext | undefined {
  const own = span.spanContext();
  return isSpanContextValid(own) && own.spanId !== trace.getSpanContext(parent)?.spanId ? own : undefined;
}

/**
 * The active span's trace context (a span is only ever active with an SDK:
 * the API alone has no context manager); without one, `fallback` (the
 * caller's `traceparent`) continued with a fresh span id.
 */
export function traceOfActive(fallback: string | null | undefined, random: RandomSource): TraceContext {
  const active = trace.getActiveSpan()?.spanContext();
  return active && isSpanContextValid(active) ? fromSpanContext(active) : continueOrStartTrace(fallback, random);
}

function fromSpanContext(own: SpanContext): TraceContext {
  const flags = own.traceFlags.toString(16).padStart(2, "0");
  return { traceId: own.traceId, spanId: own.spanId, traceparent: `00-${own.traceId}-${own.spanId}-${flags}` };
}
