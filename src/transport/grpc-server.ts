import type { ServiceImpl } from "@connectrpc/connect";
import type net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { addService } from "./grpc-adapter.js";
import type { HealthRegistry } from "./health.js";
import { MAX_REQUEST_BYTES, type ConnectionLimits } from "./limits.js";
import { Reflection } from "./reflection.js";

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly otp: ServiceImpl<typeof OtpService>;
  readonly health: HealthRegistry;
  /** Aborted when the server starts shutting down; handlers see it as their context's signal. */
  readonly shutdownSignal: AbortSignal;
  readonly limits: ConnectionLimits;
}

export interface RunningServer {
  readonly port: number;
  /** Stops accepting calls, lets calls in flight finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

/** The mesh port: @grpc/grpc-js serving OtpService, grpc.health.v1 and server reflection. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const limits = options.limits;
  const server = new grpc.Server({
    "grpc.keepalive_permit_without_calls": 1,
    // As on the HTTP port: larger messages (compressed or inflated) are refused before any handler runs.
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    // A connection without calls (a silent socket, a preface and nothing more) is closed; one with a
    // WatchDelivery stream is not idle (its keep-alives are traffic on an open call).
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    // Connections are recycled now and then, so load spreads over new replicas; streams get as long again to end.
    "grpc.max_connection_age_ms": limits.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": limits.maxConnectionAgeMs,
    "grpc.max_concurrent_streams": limits.maxStreamsPerConnection,
  });
  addService(server, OtpService, options.otp, options.shutdownSignal);
  addService(server, Health, options.health.impl(), options.shutdownSignal);
  const reflection = new Reflection([OtpService, Health, reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection]);
  addService(server, reflectionV1.ServerReflection, reflection.v1(), options.shutdownSignal);
  addService(server, reflectionV1alpha.ServerReflection, reflection.v1alpha(), options.shutdownSignal);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  // grpc-js has no option for a connection cap; its listeners are plain Node servers, which have one.
  const listeners = (server as unknown as { http2Servers?: Map<net.Server, unknown> }).http2Servers;
  for (const listener of listeners?.keys() ?? []) listener.maxConnections = limits.maxConnections;
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        // forceShutdown destroys every session at once, but grpc-js does not always call tryShutdown's
        // callback afterwards (seen after a long run of streams: serve then never exited): done is done.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
