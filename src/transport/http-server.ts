import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import type { HealthRegistry } from "./health.js";
import type { RunningServer } from "./grpc-server.js";
import { MAX_REQUEST_BYTES, type ConnectionLimits } from "./limits.js";
import { malformedAsInvalidArgument } from "./malformed-requests.js";
import { rpcServerSpans } from "./rpc-spans.js";

/** A plain HTTP route (pages, JSON endpoints, webhooks). Returns false when it does not handle the request. */
export type PageHandler = (request: PageArgs[0], response: PageArgs[1]) => boolean;
type PageArgs = Parameters<NonNullable<ConnectNodeAdapterOptions["fallback"]>>;

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Absent on the worker's health port, which serves health and pages only. */
  readonly otp?: ServiceImpl<typeof OtpService>;
  readonly health: HealthRegistry;
  readonly pages: readonly PageHandler[];
  readonly shutdownSignal: AbortSignal;
  readonly limits: ConnectionLimits;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * The HTTP port: Connect, gRPC-Web and gRPC through connect-node, plus pages
 * (and, without `otp`, the worker's health port: grpc.health.v1 and pages).
 * One listener speaks both HTTP/1.1 and cleartext HTTP/2 (h2c with prior
 * knowledge): it reads a connection's first bytes and hands it to the server
 * for that protocol, which Node's http2 server does not do by itself for h2c.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningServer> {
  const connect = connectNodeAdapter({
    // Checked while reading, before the handler (and so before authentication) runs: a larger declared length is
    // refused unread, a body is read no further than this, and gzip output is capped at it while inflating.
    readMaxBytes: MAX_REQUEST_BYTES,
    // A JSON field or enum name this contract does not know is an error, not silently dropped: "channels":
    // ["CHANNEL_FAX"] must not become the default plan and an SMS.
    jsonOptions: { ignoreUnknownFields: false },
    interceptors: [rpcServerSpans],
    routes: (router) => {
      if (options.otp) router.service(OtpService, options.otp);
      router.service(Health, options.health.impl());
      // Malformed protobuf answers INVALID_ARGUMENT, not INTERNAL (see malformed-requests.ts).
      router.handlers.forEach((handler, i) => (router.handlers[i] = malformedAsInvalidArgument(handler)));
    },
    shutdownSignal: options.shutdownSignal,
    fallback: (request, response) => {
      for (const page of options.pages) if (page(request, response)) return;
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found\n");
    },
  });
  const { limits } = options;
  const h1 = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often those two are checked (Node's default, 30 s, would let a client that trickles a byte now
      // and then keep half a request open for 40 s instead of 10).
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    connect,
  );
  // A socket quiet for this long is closed (a streaming response writes keep-alives well within it).
  h1.timeout = limits.idleTimeoutMs;
  // Node checks header and request timeouts from a timer it starts when a server listens; h1 never listens
  // itself (connections are handed to it), so start that timer the way listen() would.
  h1.emit("listening");
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } }, connect);
  // A session with no activity for this long is closed: a preface and nothing more, or an idle client.
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.setTimeout(limits.idleTimeoutMs, () => session.destroy());
  });
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // Until its first bytes say which protocol it speaks, a socket gets the header timeout.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    socket.once("readable", () => {
      socket.setTimeout(0);
      routeByPreface(socket, h1, h2);
    });
  });
  listener.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port, options.host, resolve);
  });
  const port = (listener.address() as net.AddressInfo).port;
  return {
    port,
    close: async (graceMs) => {
      listener.close();
      // HTTP/2: GOAWAY, so clients open no new stream here; streams in flight finish.
      for (const session of sessions) session.close();
      // HTTP/1.1: a keep-alive connection is closed as soon as its request in flight is answered, not when its
      // keep-alive timeout runs out (a provider posting receipts kept a stopping replica up for seconds).
      h1.closeIdleConnections();
      const idle = setInterval(() => h1.closeIdleConnections(), 50);
      const force = setTimeout(() => sockets.forEach((s) => s.destroy()), graceMs);
      await Promise.all([new Promise((r) => h1.close(r)), new Promise((r) => h2.close(r)), waitUntilEmpty(sockets)]);
      clearInterval(idle);
      clearTimeout(force);
    },
  };
}

function routeByPreface(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  const head: Buffer | null = socket.read(Math.min(socket.readableLength, H2_PREFACE.length)) ?? socket.read();
  if (head === null) {
    socket.once("readable", () => routeByPreface(socket, h1, h2));
    return;
  }
  socket.unshift(head);
  const isH2 = head.length > 0 && H2_PREFACE.subarray(0, head.length).equals(head);
  (isH2 ? h2 : h1).emit("connection", socket);
}

async function waitUntilEmpty(sockets: Set<net.Socket>): Promise<void> {
  while (sockets.size > 0) await new Promise((r) => setTimeout(r, 20));
}
