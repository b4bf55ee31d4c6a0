import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { deliveryEventToProto } from "../../contract/delivery-event.js";
import { servesCountry } from "../../domain/route.js";
import { cancelOtp, getVerification } from "../../service/end-verification.js";
import { watchDelivery } from "../../service/watch-delivery.js";
import { otpMetrics } from "../../telemetry/metrics.js";
import { asCaller, streamAsCaller, type ApiDeps } from "../call.js";
import { routeToProto, verificationToProto } from "../to-proto.js";
import { requireChannelFilter, requireCountryFilter, requireSequence, requireVerificationId } from "../validation.js";

type Impl = ServiceImpl<typeof OtpService>;

/** Reading, following and stopping verifications, and the route catalogue. */
export function verificationHandlers(deps: ApiDeps): Pick<Impl, "getVerification" | "cancelOtp" | "watchDelivery" | "listRoutes"> {
  return {
    getVerification: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const details = await getVerification(deps.service, caller, requireVerificationId(request.verificationId));
        return {
          verification: verificationToProto(details.verification, details.attempts),
          events: details.events.map(deliveryEventToProto),
        };
      }),

    cancelOtp: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const details = await cancelOtp(deps.service, caller, requireVerificationId(request.verificationId));
        return { verification: verificationToProto(details.verification, details.attempts) };
      }),

    watchDelivery: (request, context) =>
      streamAsCaller(deps, context, async function* (caller) {
        const id = requireVerificationId(request.verificationId);
        const items = watchDelivery(deps.service, deps.feed, caller, id, requireSequence(request.afterSequence), context.signal, deps.watchKeepAliveMs);
        otpMetrics.streamOpened();
        try {
          for await (const item of items) {
            yield item.kind === "event" ? { event: deliveryEventToProto(item.event) } : { keepAliveAt: timestampFromDate(item.at) };
          }
        } finally {
          otpMetrics.streamClosed();
        }
      }),

    listRoutes: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const country = requireCountryFilter(request.country);
        const channel = requireChannelFilter(request.channel);
        const routes = deps.service.catalogue.routes.filter(
          (r) =>
            (channel === undefined || r.channel === channel) &&
            (caller.channels === undefined || caller.channels.includes(r.channel)) &&
            (caller.routes === undefined || caller.routes.includes(r.id)) &&
            (country === undefined || servesCountry(r, country)),
        );
        return { routes: routes.map((r) => routeToProto(r, deps.service.routeHealth?.(r.id))) };
      }),
  };
}
