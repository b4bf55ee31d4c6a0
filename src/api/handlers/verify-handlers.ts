import type { ServiceImpl } from "@connectrpc/connect";
import { VerifyStatus, type OtpService } from "../../../gen/otp/v1/otp_service_pb.js";
import { channelToProto } from "../../contract/enums.js";
import { verifyOtp } from "../../service/verify-otp.js";
import { asCaller, type ApiDeps } from "../call.js";
import { requireCode } from "../validation.js";

/** VerifyOtp: a wrong code is a result, not an error. */
export function verifyHandlers(deps: ApiDeps): Pick<ServiceImpl<typeof OtpService>, "verifyOtp"> {
  return {
    verifyOtp: (request, context) =>
      asCaller(deps, context, async (caller) => {
        const { verificationId, code } = requireCode(request.verificationId, request.code);
        const result = await verifyOtp(deps.service, caller, verificationId, code);
        return {
          status: VerifyStatus[result.outcome],
          remainingAttempts: result.remainingAttempts,
          attemptId: result.attemptId ?? "",
          ...(result.channel ? { channel: channelToProto(result.channel) } : {}),
        };
      }),
  };
}
