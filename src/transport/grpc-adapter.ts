import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { toConnectError } from "../api/error-mapping.js";
import { CallContext, OpenCalls } from "./grpc-call-context.js";

/**
 * Serves a Connect-style service implementation (`ServiceImpl`) on a
 * @grpc/grpc-js server, using the generated descriptors and protobuf-es binary
 * codecs: one implementation, no second proto loader, no duplicated handlers.
 *
 * Errors keep their code and message; their details travel, as gRPC expects, in
 * a google.rpc.Status in the `grpc-status-details-bin` trailer.
 */
export function addService<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: ServiceImpl<S>,
  shutdownSignal: AbortSignal,
): void {
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  const openCalls = new OpenCalls(shutdownSignal);
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    definition[method.localName] = {
      path,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message: any) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => parseRequest(method.input, bytes),
      responseSerialize: (message: any) => Buffer.from(toBinary(method.output, create(method.output, message))),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
    const methodImpl = (impl as Record<string, (...args: any[]) => any>)[method.localName]!.bind(impl);
    handlers[method.localName] = handlerFor(service, method, path, methodImpl, openCalls);
  }
  server.addService(definition as grpc.ServiceDefinition, handlers);
}

/** Request bytes that are not a valid message: the handler answers INVALID_ARGUMENT (grpc-js itself would say INTERNAL). */
class MalformedRequest {
  constructor(readonly reason: string) {}
}

function parseRequest(schema: DescMessage, bytes: Buffer): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    return new MalformedRequest(error instanceof Error ? error.message : String(error));
  }
}

function malformed(request: MalformedRequest): ConnectError {
  return new ConnectError(`malformed request message: ${request.reason}`, Code.InvalidArgument);
}

/** The request of a call with a single request message, or the INVALID_ARGUMENT its bytes earned. */
function requestOf(call: { request: unknown }): unknown {
  if (call.request instanceof MalformedRequest) throw malformed(call.request);
  return call.request;
}

const CLIENT_CANCELLED = new ConnectError("client cancelled", Code.Canceled);

type AnyCall =
  | grpc.ServerUnaryCall<any, any>
  | grpc.ServerReadableStream<any, any>
  | grpc.ServerWritableStream<any, any>
  | grpc.ServerDuplexStream<any, any>;

function handlerFor(
  service: DescService,
  method: DescMethod,
  path: string,
  impl: (...args: any[]) => any,
  openCalls: OpenCalls,
): grpc.UntypedHandleCall {
  const context = (call: AnyCall): HandlerContext => {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    const context = new CallContext(service, method, path, metadataToHeaders(call.metadata), Number.isFinite(deadlineMs) ? deadlineMs : undefined, openCalls);
    // grpc-js says "cancelled" when a call's stream closes, after a normal answer too. One shared reason: an error
    // per call (its stack captured) cost 1 % of serve's CPU.
    (call as NodeJS.EventEmitter).once("cancelled", () => context.end(CLIENT_CANCELLED));
    return context;
  };

  switch (method.methodKind) {
    case "unary":
      return ((call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
        Promise.resolve()
          .then(() => impl(requestOf(call), context(call)))
          .then((response) => callback(null, response), (error) => callback(toGrpcError(error)));
      }) as grpc.handleUnaryCall<any, any>;
    case "server_streaming":
      return ((call: grpc.ServerWritableStream<any, any>) => {
        void writeAll(
          call,
          (async function* () {
            yield* impl(requestOf(call), context(call)) as AsyncIterable<unknown>;
          })(),
        );
      }) as grpc.handleServerStreamingCall<any, any>;
    case "bidi_streaming":
      return ((call: grpc.ServerDuplexStream<any, any>) => {
        void writeAll(call, impl(incoming(call), context(call)));
      }) as grpc.handleBidiStreamingCall<any, any>;
    case "client_streaming":
      return ((call: grpc.ServerReadableStream<any, any>, callback: grpc.sendUnaryData<any>) => {
        Promise.resolve()
          .then(() => impl(incoming(call), context(call)))
          .then((response) => callback(null, response), (error) => callback(toGrpcError(error)));
      }) as grpc.handleClientStreamingCall<any, any>;
  }
}

/**
 * The request messages of a client- or bidi-streaming call. Not `for await`
 * over the call itself: a finished stream iterator destroys its stream, which
 * for a duplex call would also kill the response side before its status.
 */
async function* incoming(call: grpc.ServerReadableStream<any, any> | grpc.ServerDuplexStream<any, any>): AsyncGenerator<unknown> {
  const queue: unknown[] = [];
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  call.on("data", (message) => {
    if (message instanceof MalformedRequest) failure = malformed(message);
    else queue.push(message);
    wake?.();
  });
  call.once("end", () => {
    ended = true;
    wake?.();
  });
  call.once("error", (error: Error) => {
    failure = error;
    wake?.();
  });
  for (;;) {
    if (queue.length > 0) yield queue.shift();
    else if (failure) throw failure;
    else if (ended) return;
    else await new Promise<void>((resolve) => (wake = resolve));
  }
}

/** Writes every response, respecting back-pressure, then ends the call with OK or the error. */
async function writeAll(call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>, responses: AsyncIterable<unknown>) {
  try {
    for await (const response of responses) {
      if (call.cancelled) return;
      if (!call.write(response)) await new Promise((resolve) => call.once("drain", resolve));
    }
    call.end();
  } catch (error) {
    if (!call.cancelled) call.emit("error", toGrpcError(error));
  }
}

function toGrpcError(error: unknown): grpc.ServiceError {
  const connectError = toConnectError(error);
  const metadata = new grpc.Metadata();
  connectError.metadata.forEach((value, key) => metadata.set(key, value));
  const details = connectError.details.map((detail) =>
    "desc" in detail
      ? anyPack(detail.desc, create(detail.desc as DescMessage, detail.value))
      : { $typeName: "google.protobuf.Any" as const, typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value },
  );
  if (details.length > 0) {
    const status = create(StatusSchema, { code: connectError.code, message: connectError.rawMessage, details });
    metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)));
  }
  return Object.assign(new Error(connectError.rawMessage), {
    code: connectError.code as number as grpc.status,
    details: connectError.rawMessage,
    metadata,
  });
}

function metadataToHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (!key.endsWith("-bin")) headers.set(key, String(value));
  }
  return headers;
}
