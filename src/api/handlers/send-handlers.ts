import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { estimateOtp } from "../../service/estimate-otp.js";
import { sendOtp } from "../../service/send-otp.js";
import { estimateTraceparent } from "../../store/repositories/estimates.js";
import { annotate, ATTR, contextOf, inSpan, rpcParent, traceOfActive } from "../../telemetry/spans.js";
import { asCaller, type ApiDeps } from "../call.js";
import { attemptToProto, money, stepToProto } from "../to-proto.js";
import { toPlanInput, toSendCommand } from "../validation.js";

type Impl = ServiceImpl<typeof OtpService>;

/** EstimateOtp and SendOtp: plan, price, send. */
export function sendHandlers(deps: ApiDeps): Pick<Impl, "estimateOtp" | "sendOtp"> {
  return {
    estimateOtp: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const trace = traceOfActive(context.requestHeader.get("traceparent"), deps.service.random);
        const estimate = await estimateOtp(deps.service, caller, toPlanInput(request), trace);
        annotate({ [ATTR.estimateId]: estimate.estimateId });
        return {
          estimateId: estimate.estimateId,
          expiresAt: timestampFromDate(estimate.expiresAt),
          steps: estimate.steps.map(stepToProto),
          firstStepTotal: money(estimate.currency, estimate.firstStepMicros),
          worstCaseTotal: money(estimate.currency, estimate.worstCaseMicros),
          ...(estimate.balance ? { balance: money(estimate.balance.currency, estimate.balance.micros) } : {}),
          sufficientBalance: estimate.sufficientBalance,
          warnings: [...estimate.warnings],
        };
      }),

    sendOtp: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const command = toSendCommand(request);
        // Bound to an estimate, the send continues the estimate's trace (linked to this request's).
        const estimated = command.estimateId ? await estimateTraceparent(deps.service.db, command.estimateId, caller.id) : undefined;
        const header = context.requestHeader.get("traceparent");
        const span = { parent: estimated ? contextOf(estimated) : rpcParent(header), linkActive: estimated !== undefined };
        return inSpan("otp.send", span, async () => {
          const trace = traceOfActive(estimated ?? header, deps.service.random);
          const result = await sendOtp(deps.service, caller, command, trace);
          const v = result.verification;
          const first = result.firstAttempt;
          annotate({
            [ATTR.verificationId]: v.id,
            [ATTR.attemptId]: first.id,
            [ATTR.channel]: first.channel,
            [ATTR.routeId]: first.routeId,
            [ATTR.priceMicros]: first.priceMicros,
            ...(command.estimateId ? { [ATTR.estimateId]: command.estimateId } : {}),
          });
          return {
            verificationId: v.id,
            expiresAt: timestampFromDate(v.expiresAt),
            steps: v.steps.map(stepToProto),
            firstAttempt: attemptToProto(result.firstAttempt),
            priceQuoted: money(result.priceQuoted.currency, result.priceQuoted.micros),
            traceId: v.traceId,
            clientReference: v.clientReference,
          };
        });
      }),
  };
}
