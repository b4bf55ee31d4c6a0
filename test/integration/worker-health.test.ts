import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { freePort, waitFor } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startServiceProcess, startWorkerProcess, type ServiceProcess } from "../harness/service-process.js";
import { TEST_KEYS, uniquePhone } from "../harness/service-fixture.js";

const TOKEN = "worker-health-token";
const healthOf = (port: number) => createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));

/**
 * The worker's own port: grpc.health.v1 over h2c (what a Kubernetes `grpc:`
 * probe calls) and `GET /metrics` with the worker's series.
 */
describe("the worker's health port", () => {
  let nats: RunningNats;
  const processes: ServiceProcess[] = [];
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    for (const p of processes) await p.stop("SIGKILL");
    await nats?.stop();
  });

  it("says NOT_SERVING while the worker waits for its database", async () => {
    const closedPort = await freePort();
    const worker = await startServiceProcess(
      ["worker", "--channels", "sms"],
      {
        OTP_HOST: "127.0.0.1",
        OTP_DATABASE_URL: `postgres://otp@127.0.0.1:${closedPort}/otp`,
        OTP_NATS_URL: nats.url,
        OTP_CODE_HASH_KEY: TEST_KEYS.hashKey.toString("base64"),
        OTP_CODE_SEAL_KEY: TEST_KEYS.sealKey.toString("base64"),
      },
      "health port open; starting",
    );
    processes.push(worker);
    expect((await healthOf(worker.healthPort).check({})).status).toBe(Serving.NOT_SERVING);
    expect(worker.exitCode()).toBeNull();
  });

  it("says SERVING once consuming, serves the worker's metrics, and exits 0 on SIGTERM", async () => {
    const options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, token: TOKEN };
    const serve = await startServeProcess(options);
    processes.push(serve);
    const worker = await startWorkerProcess({ ...options, channels: "sms" });
    processes.push(worker);
    expect((await healthOf(worker.healthPort).check({})).status).toBe(Serving.SERVING);

    const otp = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
    await otp.sendOtp({ destination: { phone: uniquePhone() } }, { headers: { authorization: `Bearer ${TOKEN}` } });
    const accepted = 'otp_provider_submits_total{channel="sms",route="sandbox-sms",result="accepted"';
    await waitFor("the worker's submission counted on its /metrics", async () => (await (await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`)).text()).includes(`${accepted},`), 15_000);
    // The serve process did not send it: its own /metrics has no submission.
    expect(await (await fetch(`http://127.0.0.1:${serve.httpPort}/metrics`)).text()).not.toContain(accepted);

    expect(await worker.stop("SIGTERM")).toBe(0);
  });
});
