import * as grpc from "@grpc/grpc-js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { waitFor } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { inboxMessages, startServeProcess, type ServiceProcess } from "../harness/service-process.js";
import { bearerMetadata, stockGrpcClients, unary } from "../harness/stock-grpc-client.js";

const TOKEN = "mesh-caller-token";

/** `serve` as a real process on real PostgreSQL, with bearer-token callers, over both ports. */
describe("serve role as a process on PostgreSQL", () => {
  let service: ServiceProcess;
  let databaseUrl: string;
  let clients: ReturnType<typeof stockGrpcClients>;
  const codes: string[] = [];

  beforeAll(async () => {
    databaseUrl = await createTestDatabase(inject("pgAdminUrl"));
    service = await startServeProcess({ databaseUrl, token: TOKEN });
    clients = stockGrpcClients(service.grpcPort);
  });
  afterAll(async () => {
    clients?.close();
    await service?.stop("SIGKILL");
  });

  const bearer = () => bearerMetadata(TOKEN);

  async function codeFor(verificationId: string): Promise<string> {
    let code = "";
    await waitFor("the code in the dev inbox", async () => {
      const messages = await inboxMessages(service.httpPort);
      code = messages.find((m) => m.verification_id === verificationId)?.body.match(/^(\d+) /)?.[1] ?? "";
      return code !== "";
    });
    codes.push(code);
    return code;
  }

  it("refuses a call without a token over gRPC", async () => {
    const error = await unary(clients.otp, "ListRoutes", {}).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("sends over gRPC and verifies over Connect, for the same caller", async () => {
    const sent = await unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone: "+31612345600" }, code_length: 8 }, bearer());
    const code = await codeFor(sent.verification_id);
    const connect = createClient(OtpService, createConnectTransport({ baseUrl: `http://127.0.0.1:${service.httpPort}`, httpVersion: "1.1" }));
    const result = await connect.verifyOtp({ verificationId: sent.verification_id, code }, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(result.status).toBe(VerifyStatus.APPROVED);
  });

  it("on SIGTERM ends open streams with UNAVAILABLE (clients resume elsewhere) and exits 0; no code in its log or its database", async () => {
    const sent = await unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone: "+31612345601" }, code_length: 8 }, bearer());
    await codeFor(sent.verification_id);
    const stream = clients.otp.WatchDelivery({ verification_id: sent.verification_id }, bearer());
    const events: unknown[] = [];
    stream.on("data", (e: unknown) => events.push(e));
    const status = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
    stream.on("error", () => {});
    await waitFor("the replayed events", async () => events.length >= 4, 10_000);
    expect(await service.stop("SIGTERM")).toBe(0);
    expect(await status).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringContaining("after_sequence") });
    expect(service.output()).not.toContain('"rpc":"WatchDelivery"'); // a stream the shutdown ends is not logged as a failure

    for (const code of codes) expect(service.output()).not.toContain(code);
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const tables = ["verifications", "attempts", "delivery_events", "outbox", "idempotency_keys"];
      let dump = "";
      for (const table of tables) dump += JSON.stringify((await client.query(`select * from ${table}`)).rows);
      const payloads = (await client.query("select payload from outbox")).rows.map((r: { payload: string }) => Buffer.from(r.payload, "base64").toString("latin1"));
      expect(dump).toContain("+31612345600");
      for (const code of codes) {
        expect(dump).not.toContain(code);
        for (const payload of payloads) expect(payload).not.toContain(code);
      }
    } finally {
      await client.end();
    }
  });
});
