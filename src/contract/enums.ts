/** Domain ↔ protobuf enum mapping. Domain strings match the proto value names without their prefix. */
import {
  AttemptStatus as PbAttemptStatus,
  Channel as PbChannel,
  DeliveryEventKind as PbDeliveryEventKind,
} from "../../gen/otp/v1/common_pb.js";
import type { Channel } from "../domain/channel.js";
import type { AttemptStatus, DeliveryEventKind } from "../domain/delivery-event.js";

export function channelToProto(channel: Channel): PbChannel {
  return PbChannel[channel.toUpperCase() as keyof typeof PbChannel];
}

/** Undefined for CHANNEL_UNSPECIFIED or an unknown number. */
export function channelFromProto(channel: PbChannel): Channel | undefined {
  if (channel === PbChannel.UNSPECIFIED) return undefined;
  return PbChannel[channel]?.toLowerCase() as Channel | undefined;
}

export function attemptStatusToProto(status: string): PbAttemptStatus {
  return PbAttemptStatus[status as AttemptStatus] ?? PbAttemptStatus.UNSPECIFIED;
}

export function eventKindToProto(kind: DeliveryEventKind): PbDeliveryEventKind {
  return PbDeliveryEventKind[kind];
}

export function eventKindFromProto(kind: PbDeliveryEventKind): DeliveryEventKind {
  return PbDeliveryEventKind[kind] as DeliveryEventKind;
}
