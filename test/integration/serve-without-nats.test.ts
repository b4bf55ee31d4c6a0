import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { waitFor } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";

const TOKEN = "in-process-test-token";
const API_KEY = "bx-test-key";

/**
 * `serve` without NATS keeps its work queue in memory. A kill -9 must not lose
 * what was queued there: the next start dispatches it again, and a call that
 * was in flight is repeated only with its idempotency key, so each phone gets one SMS.
 */
describe("serve on the in-process bus (no NATS) with real PostgreSQL", () => {
  let peer: HttpRoutePeer;
  let options: ProcessOptions;
  let serve: ServiceProcess | undefined;
  let client: Client<typeof OtpService>;
  const headers = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    peer = await HttpRoutePeer.start({ apiKey: API_KEY, webhookSecret: "unused-secret" });
    options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), configFile: peer.writeConfigFile("1s"), env: { OTP_WORKER_CONCURRENCY: "2" } };
  });
  afterAll(async () => {
    await serve?.stop("SIGKILL");
    await peer?.stop();
  });

  async function start(): Promise<ServiceProcess> {
    serve = await startServeProcess({ ...options, token: TOKEN });
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
    return serve;
  }

  it("after kill -9, every accepted send is delivered once: queued ones dispatched again, in-flight ones repeated with their key", async () => {
    const phones = Array.from({ length: 6 }, (_, i) => `+316555${String(process.pid % 100).padStart(2, "0")}${900 + i}`);
    for (const phone of phones) peer.onSend(phone, { kind: "hold" });
    const first = await start();
    const sent: string[] = [];
    for (const phone of phones) sent.push((await client.sendOtp({ destination: { phone } }, { headers })).verificationId);
    // Two calls are with the provider (concurrency 2), four wait in the dead process's memory.
    await waitFor("two calls in flight", async () => peer.requests.length >= 2);
    expect(await first.stop("SIGKILL")).toBe(null);
    for (const phone of phones) peer.onSend(phone, { kind: "accept" });

    await start();
    const db = new pg.Client({ connectionString: options.databaseUrl });
    await db.connect();
    try {
      const statuses = async () => (await db.query<{ status: string }>("select status from attempts where verification_id = any($1)", [sent])).rows.map((r) => r.status);
      await waitFor("every attempt submitted", async () => (await statuses()).every((s) => s === "SUBMITTED" || s === "DELIVERED"), 30_000, 100);
    } finally {
      await db.end();
    }
    for (const phone of phones) expect(peer.sendsTo(phone)).toHaveLength(1);
  });

  it("refuses to start a second serve without NATS on the same database", async () => {
    const second = startServeProcess({ ...options, token: TOKEN });
    await expect(second).rejects.toThrow("several serve replicas on one database need NATS (OTP_NATS_URL)");
  });
});
