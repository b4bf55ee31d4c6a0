import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { rpcParent } from "../telemetry/spans.js";

const tracer = trace.getTracer("otp-orchestrator");

/**
 * Server spans for the HTTP port (Connect, gRPC-Web and gRPC over connect-node),
 * which no instrumentation covers: one per call, named and attributed as the
 * RPC semantic conventions say, the parent the caller's `traceparent` (or the
 * HTTP/1 server span). A stream's span ends when its last message is sent.
 * Without an SDK every call here is the API's no-op.
 */
export const rpcServerSpans: Interceptor = (next) => async (request) => {
  const span = tracer.startSpan(
    `${request.service.typeName}/${request.method.name}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "connect_rpc", "rpc.service": request.service.typeName, "rpc.method": request.method.name },
    },
    rpcParent(request.header.get("traceparent")),
  );
  try {
    const response = await context.with(trace.setSpan(context.active(), span), () => next(request));
    if (!response.stream) {
      finish(span, undefined);
      return response;
    }
    return { ...response, message: endAfter(response.message, span) };
  } catch (error) {
    finish(span, error);
    throw error;
  }
};

async function* endAfter<T>(messages: AsyncIterable<T>, span: Span): AsyncGenerator<T> {
  let failure: unknown;
  try {
    yield* messages;
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    // Also when the client goes away mid-stream (the generator is returned early).
    finish(span, failure);
  }
}

function finish(span: Span, error: unknown): void {
  if (error === undefined) {
    span.setAttribute("rpc.grpc.status_code", 0);
  } else {
    const connectError = ConnectError.from(error);
    span.setAttribute("rpc.grpc.status_code", connectError.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
  }
  span.end();
}
