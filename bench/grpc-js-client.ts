import { create, fromBinary, toBinary, type DescService } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";

/**
 * A client of `service` on its own HTTP/2 connection to `port`, on
 * @grpc/grpc-js with the generated descriptors and protobuf-es codecs, shaped
 * like connect's generated `Client` (unary calls and server streams, headers
 * and timeouts). The load generator's client: per call it costs a third less
 * CPU than connect-node's gRPC transport and keeps far less alive between
 * calls, so the load generator's own collections do not make the tail it reports.
 */
export function grpcJsClient<S extends DescService>(service: S, port: number): Client<S> {
  // A local subchannel pool: without it, grpc-js shares one connection between every client of the same address.
  const channel = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    const path = `/${service.typeName}/${method.name}`;
    const serialize = (message: any) => Buffer.from(toBinary(method.input, create(method.input, message)));
    const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
    if (method.methodKind === "unary") {
      client[method.localName] = (request: unknown, options: CallOptions = {}) =>
        new Promise((resolve, reject) =>
          channel.makeUnaryRequest(path, serialize, deserialize, request, metadataOf(options), callOptionsOf(options), (error, response) => (error ? reject(error) : resolve(response))),
        );
    } else if (method.methodKind === "server_streaming") {
      client[method.localName] = (request: unknown, options: CallOptions = {}) =>
        cancelledWhenLeft(channel.makeServerStreamRequest(path, serialize, deserialize, request, metadataOf(options), callOptionsOf(options)));
    } else {
      client[method.localName] = () => {
        throw new Error(`${path}: ${method.methodKind} calls are not needed by the load generator`);
      };
    }
  }
  return client as Client<S>;
}

/**
 * A server stream's messages. A loop that leaves early cancels the call, as
 * connect's generated clients do: grpc-js's stream, only destroyed, leaves the
 * call open on the server until its deadline.
 */
async function* cancelledWhenLeft(call: grpc.ClientReadableStream<unknown>): AsyncGenerator<unknown> {
  try {
    yield* call;
  } finally {
    call.cancel();
  }
}

function metadataOf(options: CallOptions): grpc.Metadata {
  const metadata = new grpc.Metadata();
  new Headers(options.headers).forEach((value, key) => metadata.set(key, value));
  return metadata;
}

function callOptionsOf(options: CallOptions): grpc.CallOptions {
  return options.timeoutMs !== undefined ? { deadline: Date.now() + options.timeoutMs } : {};
}
