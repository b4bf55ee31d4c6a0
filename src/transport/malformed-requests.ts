import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * connect-es 2.1 reports request bytes that do not parse as protobuf as
 * INTERNAL ("parse binary: …", in its protocol/serialization), while its JSON
 * path already says INVALID_ARGUMENT. A malformed request is the client's
 * fault, and an INTERNAL (HTTP 500) pages whoever is on call. This rewrites
 * exactly that error, in each protocol's wire form, to INVALID_ARGUMENT; every
 * other response passes through untouched. Remove it once connect-es answers
 * INVALID_ARGUMENT itself.
 */
export function malformedAsInvalidArgument(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (request: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> => {
    const response = await handler(request);
    const type = request.header.get("content-type") ?? "";
    if (response.body === undefined) return response;
    if (type.startsWith("application/grpc-web")) return { ...response, body: mapFrames(response.body, GRPC_WEB_TRAILERS, grpcWebTrailers) };
    if (type.startsWith("application/grpc")) return { ...response, body: thenFix(response.body, () => fixGrpcStatus(response.trailer)) };
    if (type.startsWith("application/connect+")) return { ...response, body: mapFrames(response.body, CONNECT_END_STREAM, connectEndStream) };
    if (response.status === 500 && !response.header?.has("content-encoding")) return connectUnary(response, response.body);
    return response;
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

const PARSE_ERROR = "parse binary:";
const GRPC_WEB_TRAILERS = 0x80;
const CONNECT_END_STREAM = 0x02;

function isParseError(code: string | null | undefined, message: string | null | undefined): boolean {
  return (code === "internal" || code === "13") && (message ?? "").startsWith(PARSE_ERROR);
}

function decodeGrpcMessage(message: string | null): string {
  try {
    return decodeURIComponent(message ?? "");
  } catch {
    return message ?? "";
  }
}

/** gRPC: the status travels in trailers, filled in while the body is written. */
function fixGrpcStatus(trailer: Headers | undefined): void {
  if (trailer && isParseError(trailer.get("grpc-status"), decodeGrpcMessage(trailer.get("grpc-message")))) trailer.set("grpc-status", "3");
}

async function* thenFix(body: AsyncIterable<Uint8Array>, fix: () => void): AsyncIterable<Uint8Array> {
  yield* body;
  fix();
}

/** Rewrites the enveloped frames whose flags are `flags` (each chunk is one whole envelope: 1 flag byte, 4 length bytes, payload). */
async function* mapFrames(body: AsyncIterable<Uint8Array>, flags: number, map: (payload: string) => string): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (chunk.length >= 5 && chunk[0] === flags) {
      const payload = map(Buffer.from(chunk.subarray(5)).toString("utf8"));
      const frame = Buffer.alloc(5 + Buffer.byteLength(payload));
      frame[0] = flags;
      frame.writeUInt32BE(Buffer.byteLength(payload), 1);
      frame.write(payload, 5, "utf8");
      yield frame;
    } else {
      yield chunk;
    }
  }
}

/** gRPC-Web: the trailers are the body's last frame, as "name: value\r\n" lines. */
function grpcWebTrailers(text: string): string {
  const status = /^grpc-status:\s*(\d+)\s*$/im.exec(text)?.[1];
  const message = /^grpc-message:\s*(.*?)\s*$/im.exec(text)?.[1] ?? null;
  return isParseError(status, decodeGrpcMessage(message)) ? text.replace(/^grpc-status:\s*13\s*$/im, "grpc-status: 3") : text;
}

/** Connect streaming: the end-of-stream frame carries `{"error": {"code", "message"}}`. */
function connectEndStream(text: string): string {
  try {
    const end = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (end.error && isParseError(end.error.code, end.error.message)) return JSON.stringify({ ...end, error: { ...end.error, code: "invalid_argument" } });
  } catch {
    // not ours to judge
  }
  return text;
}

/** Connect unary: the error is the whole (small, uncompressed) JSON body of an HTTP 500: `{"code", "message"}`. */
async function connectUnary(response: UniversalServerResponse, body: AsyncIterable<Uint8Array>): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let error: { code?: string; message?: string } | undefined;
  try {
    error = JSON.parse(bytes.toString("utf8")) as { code?: string; message?: string };
  } catch {
    error = undefined;
  }
  if (error === undefined || !isParseError(error.code, error.message)) return { ...response, body: once(bytes) };
  const out = Buffer.from(JSON.stringify({ ...error, code: "invalid_argument" }));
  const header = new Headers(response.header);
  header.set("content-length", String(out.byteLength));
  return { ...response, status: 400, header, body: once(out) };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
