import { Code, type HandlerContext } from "@connectrpc/connect";
import { UnavailableError } from "../domain/errors.js";
import type { Caller, ServiceDeps } from "../service/deps.js";
import type { EventFeed } from "../service/watch-delivery.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
import { inSpan, rpcParent } from "../telemetry/spans.js";
import type { Authenticator } from "./auth.js";
import { toConnectError } from "./error-mapping.js";

/** What the RPC handlers are built from. */
export interface ApiDeps {
  readonly service: ServiceDeps;
  readonly feed: EventFeed;
  readonly authenticator: Authenticator;
  readonly log: Logger;
  /** WatchDelivery sends a keep-alive after this long without an event. */
  readonly watchKeepAliveMs: number;
  /** A unary call still waiting on a dependency after this long answers UNAVAILABLE. */
  readonly callTimeoutMs: number;
}

/**
 * Runs one RPC body as an authenticated caller; any error leaves as a
 * ConnectError. Unexpected errors are logged with their cause and sent as a
 * bare INTERNAL. Both ports call every handler through this, so auth and error
 * mapping cannot differ between them.
 */
export async function asCaller<T>(deps: ApiDeps, context: HandlerContext, body: (caller: Caller) => Promise<T>): Promise<T> {
  const run = async () => {
    try {
      return await withinDeadline(body(deps.authenticator.authenticate(context.requestHeader)), deps.callTimeoutMs);
    } catch (error) {
      throw mapped(deps, context, error);
    }
  };
  const spanName = RPC_SPANS[context.method.name];
  return spanName === undefined ? run() : inSpan(spanName, { parent: rpcParent(context.requestHeader.get("traceparent")) }, run);
}

/**
 * The RPCs whose span starts a trace (or continues the caller's). SendOtp
 * makes its own (send-handlers.ts: bound to an estimate, it continues the
 * estimate's trace); VerifyOtp and CancelOtp make theirs in the verification's
 * trace once they have read it (verify-otp.ts, end-verification.ts).
 */
const RPC_SPANS: Partial<Record<string, string>> = {
  EstimateOtp: "otp.estimate",
};

/**
 * The caller gets an answer in bounded time even when a dependency answers
 * nothing (a frozen database holds a query forever; no server-side timeout
 * fires). The work itself goes on and may still commit: a SendOtp retried
 * with the same idempotency_key returns what it made.
 */
async function withinDeadline<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(`no answer from a dependency within ${timeoutMs} ms; retry`)), timeoutMs);
  });
  work.catch(() => undefined); // a late failure after the deadline is not an unhandled rejection
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The streaming form of `asCaller`. */
export async function* streamAsCaller<T>(
  deps: ApiDeps,
  context: HandlerContext,
  body: (caller: Caller) => AsyncIterable<T>,
): AsyncGenerator<T> {
  try {
    yield* body(deps.authenticator.authenticate(context.requestHeader));
  } catch (error) {
    throw mapped(deps, context, error);
  }
}

function mapped(deps: ApiDeps, context: HandlerContext, error: unknown) {
  const connectError = toConnectError(error);
  // A stream ended by the server's shutdown (the signal's reason) is no failure: not a warning per open stream.
  if (connectError.cause !== undefined && error !== context.signal.reason) {
    // A dependency away is expected now and then (and said by health); anything else is a bug.
    const level = connectError.code === Code.Unavailable ? "warn" : "error";
    deps.log[level]("rpc failed", { rpc: context.method.name, code: connectError.code, ...errorFields(connectError.cause) });
  }
  return connectError;
}
