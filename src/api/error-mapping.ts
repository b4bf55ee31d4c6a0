import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  IdempotencyConflictError,
  InvalidInputError,
  NotFoundError,
  PreconditionError,
  RateLimitedError,
  UnauthenticatedError,
  UnavailableError,
} from "../domain/errors.js";
import { isDatabaseUnavailable } from "../store/unavailable.js";

/**
 * The one place where errors become RPC status codes (SPEC §3). Domain errors
 * map to their code with their message; anything else is INTERNAL with a
 * generic message, the original kept as `cause` for the log, never sent.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof InvalidInputError) {
    return new ConnectError(error.message, Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: { fieldViolations: error.violations.map((v) => ({ field: v.field, description: v.description })) } },
    ]);
  }
  if (error instanceof NotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof RateLimitedError) {
    return new ConnectError(error.message, Code.ResourceExhausted, { "retry-after": String(Math.ceil(error.retryAfterMs / 1000)) });
  }
  if (error instanceof PreconditionError) return new ConnectError(error.message, Code.FailedPrecondition);
  if (error instanceof IdempotencyConflictError) return new ConnectError(error.message, Code.AlreadyExists);
  if (error instanceof UnauthenticatedError) return new ConnectError(error.message, Code.Unauthenticated);
  // Our own message says what to do (retry, resume the watch); a driver's would only leak internals.
  if (error instanceof UnavailableError) return new ConnectError(error.message, Code.Unavailable, undefined, undefined, error);
  if (isDatabaseUnavailable(error)) return new ConnectError("a dependency is unavailable; retry later", Code.Unavailable, undefined, undefined, error);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}
