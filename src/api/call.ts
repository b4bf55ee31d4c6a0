import type { HandlerContext } from "@connectrpc/connect";
import type { Caller, ServiceDeps } from "../service/deps.js";
import type { EventFeed } from "../service/watch-delivery.js";
import { errorFields, type Logger } from "../telemetry/logger.js";
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
}

/**
 * Runs one RPC body as an authenticated caller; any error leaves as a
 * ConnectError. Unexpected errors are logged with their cause and sent as a
 * bare INTERNAL. Both ports call every handler through this, so auth and error
 * mapping cannot differ between them.
 */
export async function asCaller<T>(deps: ApiDeps, context: HandlerContext, body: (caller: Caller) => Promise<T>): Promise<T> {
  try {
    return await body(deps.authenticator.authenticate(context.requestHeader));
  } catch (error) {
    throw mapped(deps, context, error);
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
  if (connectError.cause !== undefined) {
    deps.log.error("rpc failed", { rpc: context.method.name, code: connectError.code, ...errorFields(connectError.cause) });
  }
  return connectError;
}
