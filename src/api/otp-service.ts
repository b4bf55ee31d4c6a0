import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import type { ApiDeps } from "./call.js";
import { sendHandlers } from "./handlers/send-handlers.js";
import { statsHandlers } from "./handlers/stats-handlers.js";
import { verificationHandlers } from "./handlers/verification-handlers.js";
import { verifyHandlers } from "./handlers/verify-handlers.js";

/** The one OtpService implementation, served on both the gRPC and the HTTP port. */
export function createOtpService(deps: ApiDeps): ServiceImpl<typeof OtpService> {
  return {
    ...sendHandlers(deps),
    ...verifyHandlers(deps),
    ...verificationHandlers(deps),
    ...statsHandlers(deps),
  } satisfies ServiceImpl<typeof OtpService>;
}
