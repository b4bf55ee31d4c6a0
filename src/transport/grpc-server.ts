import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { addService } from "./grpc-adapter.js";
import type { HealthRegistry } from "./health.js";
import { MAX_REQUEST_BYTES } from "./limits.js";
import { Reflection } from "./reflection.js";

export interface GrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly otp: ServiceImpl<typeof OtpService>;
  readonly health: HealthRegistry;
  /** Aborted when the server starts shutting down; handlers see it as their context's signal. */
  readonly shutdownSignal: AbortSignal;
}

export interface RunningServer {
  readonly port: number;
  /** Stops accepting calls, lets calls in flight finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

/** The mesh port: @grpc/grpc-js serving OtpService, grpc.health.v1 and server reflection. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const server = new grpc.Server({
    "grpc.keepalive_permit_without_calls": 1,
    // As on the HTTP port: larger messages (compressed or inflated) are refused before any handler runs.
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
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
  return {
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
