import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { inboxMessages, startServeProcess, type ServiceProcess } from "../harness/service-process.js";
import { stockGrpcClients, unary } from "../harness/stock-grpc-client.js";

const TOKEN = "nats-test-token";

/** `serve` on real PostgreSQL and a real nats-server of its own, which the test stops and starts again. */
describe("serve with JetStream as a process", () => {
  let nats: RunningNats;
  let service: ServiceProcess;
  let clients: ReturnType<typeof stockGrpcClients>;

  beforeAll(async () => {
    nats = await startNats();
    service = await startServeProcess({ databaseUrl: await createTestDatabase(inject("pgAdminUrl")), token: TOKEN, natsUrl: nats.url });
    clients = stockGrpcClients(service.grpcPort);
  });
  afterAll(async () => {
    clients?.close();
    await service?.stop("SIGKILL");
    await nats?.stop();
  });

  const bearer = () => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${TOKEN}`);
    return metadata;
  };
  const send = (phone: string) => unary<{ verification_id: string }>(clients.otp, "SendOtp", { destination: { phone } }, bearer());
  const inbox = () => inboxMessages(service.httpPort);

  it("sends through JetStream and approves the delivered code", async () => {
    const { verification_id } = await send("+31612340001");
    let code = "";
    await waitFor("the code", async () => {
      code = (await inbox()).find((m) => m.verification_id === verification_id)?.body.slice(0, 6) ?? "";
      return code !== "";
    });
    const result = await unary<{ status: string }>(clients.otp, "VerifyOtp", { verification_id, code }, bearer());
    expect(result.status).toBe("VERIFY_STATUS_APPROVED");
  });

  it("keeps accepting sends while nats-server is down, and delivers each exactly once when it is back", async () => {
    await nats.kill();
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push((await send(`+3161234010${i}`)).verification_id);
    expect(sent).toHaveLength(5);
    await nats.restart();
    await waitFor("every code delivered", async () => {
      const delivered = new Set((await inbox()).map((m) => m.verification_id));
      return sent.every((id) => delivered.has(id));
    }, 60_000, 200);
    const messages = await inbox();
    for (const id of sent) expect(messages.filter((m) => m.verification_id === id)).toHaveLength(1);
  });
});
