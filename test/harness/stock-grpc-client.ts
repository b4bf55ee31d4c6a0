import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_DIR = path.resolve(import.meta.dirname, "../../proto");

/** grpc-js call metadata carrying a caller's bearer token. */
export function bearerMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/**
 * A plain @grpc/grpc-js client built from the .proto files alone, as another
 * team's service would build one: no generated code of ours involved.
 */
export function stockGrpcClients(port: number) {
  const definition = protoLoader.loadSync(
    ["otp/v1/otp_service.proto", "grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto", "google/rpc/status.proto", "google/rpc/error_details.proto"],
    { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  const loaded = grpc.loadPackageDefinition(definition) as any;
  const address = `127.0.0.1:${port}`;
  const credentials = grpc.credentials.createInsecure();
  return {
    otp: new loaded.otp.v1.OtpService(address, credentials),
    health: new loaded.grpc.health.v1.Health(address, credentials),
    reflection: new loaded.grpc.reflection.v1.ServerReflection(address, credentials),
    badRequestType: definition["google.rpc.BadRequest"],
    statusType: definition["google.rpc.Status"],
    close() {
      for (const c of [this.otp, this.health, this.reflection]) c.close();
    },
  };
}

/** Promisifies a unary call of a stock client. */
export function unary<T>(client: any, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => client[method](request, metadata, (error: grpc.ServiceError | null, response: T) => (error ? reject(error) : resolve(response))));
}
