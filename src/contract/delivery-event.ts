import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryEventSchema, type DeliveryEvent as PbDeliveryEvent } from "../../gen/otp/v1/common_pb.js";
import type { AttemptStatus, DeliveryEvent } from "../domain/delivery-event.js";
import { attemptStatusToProto, channelFromProto, channelToProto, eventKindFromProto, eventKindToProto } from "./enums.js";
import { AttemptStatus as PbAttemptStatus } from "../../gen/otp/v1/common_pb.js";

/** The public shape of a delivery event: WatchDelivery element and bus payload. */
export function deliveryEventToProto(event: DeliveryEvent): PbDeliveryEvent {
  return create(DeliveryEventSchema, {
    sequence: BigInt(event.sequence),
    verificationId: event.verificationId,
    kind: eventKindToProto(event.kind),
    attemptId: event.attemptId ?? "",
    ...(event.channel ? { channel: channelToProto(event.channel) } : {}),
    routeId: event.routeId ?? "",
    ...(event.status ? { status: attemptStatusToProto(event.status) } : {}),
    providerMessageId: event.providerMessageId ?? "",
    providerErrorCode: event.providerErrorCode ?? "",
    providerErrorReason: event.providerErrorReason ?? "",
    reason: event.reason ?? "",
    ...(event.currency !== undefined && event.priceMicros !== undefined
      ? { price: { currencyCode: event.currency, amountMicros: BigInt(event.priceMicros) } }
      : {}),
    occurredAt: timestampFromDate(event.occurredAt),
    ...(event.latencyMs !== undefined ? { latency: durationFromMs(event.latencyMs) } : {}),
    traceId: event.traceId,
  });
}

export function deliveryEventFromProto(pb: PbDeliveryEvent): DeliveryEvent {
  const channel = channelFromProto(pb.channel);
  return {
    sequence: Number(pb.sequence),
    verificationId: pb.verificationId,
    kind: eventKindFromProto(pb.kind),
    ...(pb.attemptId ? { attemptId: pb.attemptId } : {}),
    ...(channel ? { channel } : {}),
    ...(pb.routeId ? { routeId: pb.routeId } : {}),
    ...(pb.status !== PbAttemptStatus.UNSPECIFIED ? { status: PbAttemptStatus[pb.status] as AttemptStatus } : {}),
    ...(pb.providerMessageId ? { providerMessageId: pb.providerMessageId } : {}),
    ...(pb.providerErrorCode ? { providerErrorCode: pb.providerErrorCode } : {}),
    ...(pb.providerErrorReason ? { providerErrorReason: pb.providerErrorReason } : {}),
    ...(pb.reason ? { reason: pb.reason } : {}),
    ...(pb.price ? { currency: pb.price.currencyCode, priceMicros: Number(pb.price.amountMicros) } : {}),
    ...(pb.latency ? { latencyMs: durationMs(pb.latency) } : {}),
    traceId: pb.traceId,
    occurredAt: pb.occurredAt ? timestampDate(pb.occurredAt) : new Date(0),
  };
}

export function encodeDeliveryEvent(event: DeliveryEvent): Uint8Array {
  return toBinary(DeliveryEventSchema, deliveryEventToProto(event));
}

export function decodeDeliveryEvent(data: Uint8Array): DeliveryEvent {
  return deliveryEventFromProto(fromBinary(DeliveryEventSchema, data));
}
