import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { channelToProto } from "../../contract/enums.js";
import { getDeliveryStats } from "../../service/delivery-stats.js";
import { asCaller, type ApiDeps } from "../call.js";
import { money } from "../to-proto.js";
import { toStatsQuery } from "../validation.js";

/** GetDeliveryStats: the caller's delivery analytics for a window. */
export function statsHandlers(deps: ApiDeps): Pick<ServiceImpl<typeof OtpService>, "getDeliveryStats"> {
  return {
    getDeliveryStats: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const rows = await getDeliveryStats(deps.service, caller, toStatsQuery(request, deps.service.clock.now()));
        return {
          rows: rows.map((r) => ({
            routeId: r.routeId ?? "",
            country: r.country ?? "",
            numberPrefix: r.numberPrefix ?? "",
            attempts: BigInt(r.attempts),
            submitted: BigInt(r.submitted),
            delivered: BigInt(r.delivered),
            deliveryRate: r.deliveryRate,
            receiptLatencyP50: durationFromMs(r.receiptLatencyP50Ms),
            receiptLatencyP95: durationFromMs(r.receiptLatencyP95Ms),
            approved: BigInt(r.approved),
            conversion: r.conversion,
            escalated: BigInt(r.escalated),
            fallbackRate: r.fallbackRate,
            cost: money(r.cost.currency, r.cost.micros),
            ...(r.bucketStart ? { bucketStart: timestampFromDate(r.bucketStart) } : {}),
            ...(r.channel ? { channel: channelToProto(r.channel) } : {}),
            ...(r.stepIndex !== undefined ? { stepIndex: r.stepIndex } : {}),
            ...(r.costPerApproval ? { costPerApproval: money(r.costPerApproval.currency, r.costPerApproval.micros) } : {}),
          })),
        };
      }),
  };
}
