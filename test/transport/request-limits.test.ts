import http from "node:http";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import type { RunningApp } from "../../src/app.js";
import { startTestApp } from "../harness/app-fixture.js";

const MiB = 1024 * 1024;

/** Request size limits on every protocol of both ports, checked before authentication. */
describe("request size limits", () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.stop();
  });

  const gzip = { sendCompression: compressionGzip, compressMinBytes: 0 };
  const transports: Array<[string, () => Transport]> = [
    ["gRPC on the grpc-js port", () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.grpcPort}`, ...gzip })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "1.1", ...gzip })],
    ["gRPC-Web over h2c", () => createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, httpVersion: "2", ...gzip })],
    ["gRPC over h2c on the HTTP port", () => createGrpcTransport({ baseUrl: `http://127.0.0.1:${app.httpPort}`, ...gzip })],
  ];

  /** An unauthenticated SendOtp whose message is `bytes` long before compression (a few KiB after gzip). */
  const oversized = (transport: Transport, bytes: number) =>
    createClient(OtpService, transport)
      .sendOtp({ destination: { phone: "+31612345678" }, metadata: { padding: "a".repeat(bytes) } })
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );

  it.each(transports)("%s: a message that inflates past the limit is refused as RESOURCE_EXHAUSTED before authentication", async (_, make) => {
    const error = await oversized(make(), MiB); // 4x the limit, and under grpc-js's own 4 MB default
    expect(error?.code).toBe(Code.ResourceExhausted);
  });

  it.each(transports)("%s: a message under the limit reaches authentication", async (_, make) => {
    const error = await oversized(make(), 1_000);
    expect(error?.code).toBe(Code.Unauthenticated);
  });

  it("refuses a Connect body whose declared length is over the limit without waiting for it", async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(
        { host: "127.0.0.1", port: app.httpPort, method: "POST", path: "/otp.v1.OtpService/SendOtp", headers: { "content-type": "application/json", "content-length": String(300 * MiB) } },
        (response) => {
          let body = "";
          response.on("data", (d: Buffer) => (body += d.toString()));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      request.on("error", reject);
      request.write("{"); // the rest of the 300 MiB never comes
    });
    expect(JSON.parse(answer.body)).toMatchObject({ code: "resource_exhausted" });
  });
});
