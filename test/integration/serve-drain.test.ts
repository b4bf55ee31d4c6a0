import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, type ServiceProcess } from "../harness/service-process.js";
import { bearerMetadata, stockGrpcClients, unary } from "../harness/stock-grpc-client.js";

const TOKEN = "drain-caller-token";

/**
 * OTP_DRAIN_DELAY: on SIGTERM `serve` says NOT_SERVING at once (readiness, meshes) but keeps answering calls
 * for the delay, while Kubernetes removes the pod from its Service's endpoints; then it stops and exits 0.
 */
describe("serve with a drain delay, on SIGTERM", () => {
  let service: ServiceProcess;
  let clients: ReturnType<typeof stockGrpcClients>;

  beforeAll(async () => {
    service = await startServeProcess({ databaseUrl: await createTestDatabase(inject("pgAdminUrl")), token: TOKEN, env: { OTP_DRAIN_DELAY: "4s" } });
    clients = stockGrpcClients(service.grpcPort);
  });
  afterAll(async () => {
    clients?.close();
    await service?.stop("SIGKILL");
  });

  const bearer = () => bearerMetadata(TOKEN);
  const health = (service: string) => unary<{ status: string }>(clients.health, "Check", { service }).then((r) => r.status);

  it("answers NOT_SERVING for readiness and liveness, still serves calls during the delay, then exits 0", async () => {
    expect([await health(""), await health("liveness")]).toEqual(["SERVING", "SERVING"]);
    const exited = service.stop("SIGTERM");
    await waitFor("NOT_SERVING after SIGTERM", async () => (await health("")) === "NOT_SERVING", 2_000);
    expect(await health("otp.v1.OtpService")).toBe("NOT_SERVING");
    // Still inside the delay (it began at most 2 s ago): a send is accepted and answered.
    const sent = await unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone: "+31612345699" } }, bearer());
    expect(sent.verification_id).toMatch(/^vrf_/);
    expect(service.exitCode()).toBeNull();
    // Readiness stays NOT_SERVING through the whole delay, though the database probe (every second) still succeeds.
    const seen = new Set<string>();
    let answered = 0;
    for (;;) {
      const status = await health("").catch(() => undefined); // the port closes at the end of the delay
      if (status === undefined) break;
      seen.add(status);
      answered++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect([...seen]).toEqual(["NOT_SERVING"]);
    expect(answered).toBeGreaterThan(10); // the probe ran (several times) while these were asked
    expect(await exited).toBe(0);
    expect(service.output()).toContain("draining: NOT_SERVING, still answering");
  }, 30_000);
});
