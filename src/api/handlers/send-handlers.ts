import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { estimateOtp } from "../../service/estimate-otp.js";
import { sendOtp } from "../../service/send-otp.js";
import { continueOrStartTrace } from "../../telemetry/trace-context.js";
import { asCaller, type ApiDeps } from "../call.js";
import { attemptToProto, money, stepToProto } from "../to-proto.js";
import { toPlanInput, toSendCommand } from "../validation.js";

type Impl = ServiceImpl<typeof OtpService>;

/** EstimateOtp and SendOtp: plan, price, send. */
export function sendHandlers(deps: ApiDeps): Pick<Impl, "estimateOtp" | "sendOtp"> {
  return {
    estimateOtp: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const estimate = await estimateOtp(deps.service, caller, toPlanInput(request));
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
        const trace = continueOrStartTrace(context.requestHeader.get("traceparent"), deps.service.random);
        const result = await sendOtp(deps.service, caller, command, trace);
        const v = result.verification;
        return {
          verificationId: v.id,
          expiresAt: timestampFromDate(v.expiresAt),
          steps: v.steps.map(stepToProto),
          firstAttempt: attemptToProto(result.firstAttempt),
          priceQuoted: money(result.priceQuoted.currency, result.priceQuoted.micros),
          traceId: v.traceId,
          clientReference: v.clientReference,
        };
      }),
  };
}
