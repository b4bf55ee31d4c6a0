import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import {
  AttemptSchema,
  Encoding,
  EscalateWhen,
  PlannedStepSchema,
  TrafficClass,
} from "../../gen/otp/v1/common_pb.js";
import {
  CircuitState as ProtoCircuitState,
  RouteConversionSchema,
  RouteSchema,
  VerificationSchema,
  VerificationStatus,
} from "../../gen/otp/v1/otp_service_pb.js";
import { attemptStatusToProto, channelToProto } from "../contract/enums.js";
import { conversionRate, type CircuitState } from "../domain/conversion.js";
import type { PlannedStep } from "../domain/plan.js";
import type { CountryConversion, Route, RouteHealth } from "../domain/route.js";
import type { AttemptView, VerificationView } from "../service/views.js";

type Init<T extends DescMessage> = MessageInitShape<T>;

export function money(currency: string, micros: number) {
  return { currencyCode: currency, amountMicros: BigInt(micros) };
}

export function stepToProto(step: PlannedStep): Init<typeof PlannedStepSchema> {
  return {
    index: step.index,
    channel: channelToProto(step.channel),
    routeId: step.routeId,
    sender: step.sender,
    destinationMasked: step.addressMasked,
    deadline: durationFromMs(step.deadlineMs),
    escalateWhen: step.escalateWhen === "undelivered" ? EscalateWhen.UNDELIVERED : EscalateWhen.UNVERIFIED,
    encoding: step.encoding === "GSM7" ? Encoding.GSM7 : step.encoding === "UCS2" ? Encoding.UCS2 : Encoding.UNSPECIFIED,
    segments: step.segments,
    unitPrice: money(step.currency, step.unitPriceMicros),
    totalPrice: money(step.currency, step.totalPriceMicros),
  };
}

export function attemptToProto(attempt: AttemptView): Init<typeof AttemptSchema> {
  return {
    attemptId: attempt.id,
    stepIndex: attempt.stepIndex,
    channel: channelToProto(attempt.channel),
    routeId: attempt.routeId,
    sender: attempt.sender,
    status: attemptStatusToProto(attempt.status),
    providerMessageId: attempt.providerMessageId ?? "",
    providerErrorCode: attempt.providerErrorCode ?? "",
    providerErrorReason: attempt.providerErrorReason ?? "",
    price: money(attempt.currency, attempt.priceMicros),
    createdAt: timestampFromDate(attempt.createdAt),
    ...(attempt.submittedAt ? { submittedAt: timestampFromDate(attempt.submittedAt) } : {}),
    ...(attempt.completedAt ? { completedAt: timestampFromDate(attempt.completedAt) } : {}),
    traceId: attempt.traceId,
  };
}

export function verificationToProto(view: VerificationView, attempts: readonly AttemptView[]): Init<typeof VerificationSchema> {
  return {
    verificationId: view.id,
    status: VerificationStatus[view.status],
    policy: view.policy,
    createdAt: timestampFromDate(view.createdAt),
    expiresAt: timestampFromDate(view.expiresAt),
    ...(view.approvedAt ? { approvedAt: timestampFromDate(view.approvedAt) } : {}),
    remainingAttempts: view.remainingAttempts,
    steps: view.steps.map(stepToProto),
    attempts: attempts.map(attemptToProto),
    clientReference: view.clientReference,
    metadata: { ...view.metadata },
    traceId: view.traceId,
  };
}

export function routeToProto(route: Route, health: RouteHealth | undefined): Init<typeof RouteSchema> {
  return {
    routeId: route.id,
    channel: channelToProto(route.channel),
    provider: route.provider,
    trafficClass: TrafficClass[route.trafficClass.toUpperCase() as keyof typeof TrafficClass],
    sender: route.sender,
    countries: [...route.countries],
    prices: Object.entries(route.pricesMicros).map(([country, micros]) => ({ country, price: money(route.currency, micros) })),
    // No receipts in the window yet reads as healthy, rate 1.
    health: {
      deliveryRate: health?.deliveryRate ?? 1,
      healthy: health?.healthy ?? true,
      ...(health?.p50LatencyMs !== undefined ? { p50DeliveryLatency: durationFromMs(health.p50LatencyMs) } : {}),
      ...(health?.p95LatencyMs !== undefined ? { p95DeliveryLatency: durationFromMs(health.p95LatencyMs) } : {}),
      p95DeliveryLatencyByCountry: Object.fromEntries([...(health?.p95LatencyMsByCountry ?? [])].map(([country, ms]) => [country, durationFromMs(ms)])),
      conversionByCountry: Object.fromEntries([...(health?.conversion ?? [])].map(([country, c]) => [country, conversionToProto(c)])),
    },
  };
}

function conversionToProto({ recent, baseline, circuit }: CountryConversion): Init<typeof RouteConversionSchema> {
  return {
    recentSent: BigInt(recent.sent),
    recentApproved: BigInt(recent.approved),
    recentConversion: conversionRate(recent) ?? 0,
    baselineSent: BigInt(baseline.sent),
    baselineApproved: BigInt(baseline.approved),
    baselineConversion: conversionRate(baseline) ?? 0,
    state: CIRCUIT_STATES[circuit.state],
    reason: circuit.reason ?? "",
    ...(circuit.retryAt ? { retryAt: timestampFromDate(circuit.retryAt) } : {}),
  };
}

const CIRCUIT_STATES: Record<CircuitState, ProtoCircuitState> = {
  closed: ProtoCircuitState.CLOSED,
  open: ProtoCircuitState.OPEN,
  "half-open": ProtoCircuitState.HALF_OPEN,
};
