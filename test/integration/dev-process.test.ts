import { mkdtempSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { openDatabase } from "../../src/store/database.js";
import { dumpAllText } from "../harness/databases.js";
import { waitFor } from "../harness/free-port.js";
import { startServiceProcess, type ServiceProcess } from "../harness/service-process.js";
import { stockGrpcClients, unary } from "../harness/stock-grpc-client.js";

/**
 * The README's first command, for real: `dev` as a separate process on
 * embedded defaults (PGlite, in-process bus, sandbox providers, no auth),
 * driven by a stock grpc-js client built from proto/ alone.
 */
describe("dev role as a process", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "otp-dev-"));
  let service: ServiceProcess;
  let clients: ReturnType<typeof stockGrpcClients>;
  const codes: string[] = [];

  beforeAll(async () => {
    service = await startServiceProcess(["dev", "--data-dir", dataDir]);
    clients = stockGrpcClients(service.grpcPort);
  });
  afterAll(async () => {
    clients?.close();
    await service?.stop();
  });

  async function inbox(to: string): Promise<Array<{ body: string; verification_id: string; channel: string }>> {
    const response = await fetch(`http://127.0.0.1:${service.httpPort}/dev/inbox.json?to=${encodeURIComponent(to)}`);
    return ((await response.json()) as { messages: Array<{ body: string; verification_id: string; channel: string }> }).messages;
  }

  async function sendAndReadCode(phone: string): Promise<{ id: string; code: string }> {
    // 8 digits: long enough that the "code appears nowhere" check cannot match some hex id by chance.
    const sent = await unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone }, brand: "Acme", code_length: 8 });
    let code = "";
    await waitFor("the code in the dev inbox", async () => {
      const message = (await inbox(phone)).find((m) => m.verification_id === sent.verification_id);
      code = message?.body.match(/^(\d{8}) /)?.[1] ?? "";
      return code !== "";
    });
    codes.push(code);
    return { id: sent.verification_id, code };
  }

  const verify = (verification_id: string, code: string) =>
    unary<{ status: string; remaining_attempts: number }>(clients.otp, "VerifyOtp", { verification_id, code });

  it("sends to +31612345678, the code arrives in the dev inbox, VerifyOtp approves it once", async () => {
    const { id, code } = await sendAndReadCode("+31612345678");
    expect((await inbox("+31612345678"))[0]).toMatchObject({ channel: "sms", verification_id: id });
    expect((await verify(id, code)).status).toBe("VERIFY_STATUS_APPROVED");
    expect((await verify(id, code)).status).toBe("VERIFY_STATUS_ALREADY_APPROVED");
  });

  it("approves exactly one of 20 racing correct calls", async () => {
    const { id, code } = await sendAndReadCode("+31612345679");
    const results = await Promise.all(Array.from({ length: 20 }, () => verify(id, code)));
    expect(results.filter((r) => r.status === "VERIFY_STATUS_APPROVED")).toHaveLength(1);
    expect(results.filter((r) => r.status === "VERIFY_STATUS_ALREADY_APPROVED")).toHaveLength(19);
  });

  it("counts five wrong codes 4 … 0, then even the right code is MAX_ATTEMPTS", async () => {
    const { id, code } = await sendAndReadCode("+31612345670");
    const wrong = code === "00000000" ? "11111111" : "00000000";
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await verify(id, wrong));
    expect(results.map((r) => [r.status, r.remaining_attempts])).toEqual([4, 3, 2, 1, 0].map((n) => ["VERIFY_STATUS_WRONG_CODE", n]));
    expect((await verify(id, code)).status).toBe("VERIFY_STATUS_MAX_ATTEMPTS");
  });

  it("answers grpc.health.v1 Check with SERVING", async () => {
    expect(await unary(clients.health, "Check", { service: "" })).toEqual({ status: "SERVING" });
    expect(await unary(clients.health, "Check", { service: "otp.v1.OtpService" })).toEqual({ status: "SERVING" });
  });

  it("lists otp.v1.OtpService through server reflection and serves its file descriptor", async () => {
    const call = clients.reflection.ServerReflectionInfo();
    const responses: any[] = [];
    call.on("data", (r: unknown) => responses.push(r));
    const ended = new Promise((resolve) => call.on("end", resolve));
    call.write({ list_services: "" });
    call.write({ file_containing_symbol: "otp.v1.OtpService.SendOtp" });
    call.end();
    await ended;
    expect(responses[0].list_services_response.service.map((s: { name: string }) => s.name)).toContain("otp.v1.OtpService");
    const files = responses[1].file_descriptor_response.file_descriptor_proto as Buffer[];
    expect(files.length).toBeGreaterThanOrEqual(3); // the service file and its imports
    expect(Buffer.concat(files).toString("latin1")).toContain("otp/v1/otp_service.proto");
  });

  it("speaks Connect JSON over plain HTTP/1.1, as curl does", async () => {
    const body = JSON.stringify({ destination: { phone: "+31612345671" } });
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        { host: "127.0.0.1", port: service.httpPort, path: "/otp.v1.OtpService/SendOtp", method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      request.on("error", reject);
      request.end(body);
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text).verificationId).toMatch(/^vrf_/);
  });

  it("rejects an invalid phone with INVALID_ARGUMENT naming the field, in the status details too", async () => {
    const error = await unary(clients.otp, "SendOtp", { destination: { phone: "12345" } }).catch((e: grpc.ServiceError) => e);
    expect((error as grpc.ServiceError).code).toBe(3);
    expect((error as grpc.ServiceError).details).toContain("destination.phone");
    const [raw] = (error as grpc.ServiceError).metadata.get("grpc-status-details-bin") as Buffer[];
    const status = fromBinary(StatusSchema, raw!);
    expect(status.code).toBe(3);
    const badRequest = fromBinary(BadRequestSchema, status.details[0]!.value);
    expect(badRequest.fieldViolations[0]?.field).toBe("destination.phone");
  });

  it("never writes a code to its log or its database", async () => {
    expect(codes.length).toBeGreaterThanOrEqual(3);
    expect(await service.stop()).toBe(0);
    for (const code of codes) expect(service.output()).not.toContain(code);
    const db = await openDatabase({ kind: "pglite", dataDir: path.join(dataDir, "pglite") });
    try {
      const dump = await dumpAllText(db);
      expect(dump).toContain("+31612345678"); // the dump is real: it holds the destination
      for (const code of codes) expect(dump).not.toContain(code);
    } finally {
      await db.destroy();
    }
  });
});
