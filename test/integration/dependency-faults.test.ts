import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import { OtpService } from "../../gen/otp/v1/otp_service_pb.js";
import { sha256 } from "../harness/app-fixture.js";
import { waitFor } from "../harness/free-port.js";
import { createTestDatabase, startPostgres, type RunningPostgres } from "../harness/postgres.js";
import { startNats } from "../harness/nats.js";
import { startServeProcess, startServiceProcess, startWorkerProcess, type ServiceProcess } from "../harness/service-process.js";
import { TEST_KEYS } from "../harness/service-fixture.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";

const TOKEN = "fault-test-token";
const API_KEY = "bx-test-key";
/** The longest a call may take to answer while the database is away (the bound is 10 s; 1 s of slack for a busy CI box). */
const ANSWER_WITHIN_MS = 11_000;

interface Outcome {
  readonly phone: string;
  readonly code: Code | "ok";
  readonly tookMs: number;
}

/**
 * A PostgreSQL of its own, restarted, frozen and stopped under steady SendOtp
 * load on `serve`: the process stays up, calls answer UNAVAILABLE meanwhile,
 * health says NOT_SERVING, and every accepted send reaches the phone once.
 */
describe("serve while its database restarts, freezes and stops", () => {
  let postgres: RunningPostgres;
  let peer: HttpRoutePeer;
  let serve: ServiceProcess;
  let otp: Client<typeof OtpService>;
  let health: Client<typeof Health>;

  beforeAll(async () => {
    postgres = await startPostgres();
    peer = await HttpRoutePeer.start({ apiKey: API_KEY, webhookSecret: "unused-secret" });
    serve = await startServeProcess({
      databaseUrl: await createTestDatabase(postgres.adminUrl),
      configFile: peer.writeConfigFile("2s"),
      token: TOKEN,
      // Thousands of codes nobody types, to sequential numbers, is what SMS pumping looks like: not under test here.
      env: { OTP_SENDS_PER_CALLER: "100000/1m", OTP_PUMPING_MODE: "off", OTP_SENDS_PER_NUMBER_RANGE: "off" },
    });
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` });
    otp = createClient(OtpService, transport);
    health = createClient(Health, transport);
  }, 60_000);

  afterAll(async () => {
    await serve?.stop("SIGKILL");
    await peer?.stop();
    await postgres?.stop();
  });

  const status = async () => (await health.check({ service: OtpService.typeName })).status;
  const untilStatus = (wanted: Serving) => waitFor(`health ${Serving[wanted]}`, async () => (await status()) === wanted, 20_000, 100);

  it("stays up, answers UNAVAILABLE within 10 s and NOT_SERVING meanwhile, and then sends every accepted code exactly once", async () => {
    const outcomes: Outcome[] = [];
    let stopped = false;
    let sent = 0;
    const client = async () => {
      while (!stopped && sent < 3_000) {
        const phone = `+31655${String(++sent).padStart(6, "0")}`;
        const started = Date.now();
        try {
          await otp.sendOtp({ destination: { phone } }, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(30_000) });
          outcomes.push({ phone, code: "ok", tookMs: Date.now() - started });
        } catch (error) {
          outcomes.push({ phone, code: ConnectError.from(error).code, tookMs: Date.now() - started });
          await new Promise((resolve) => setTimeout(resolve, 50)); // a failing client backs off a little, as real ones do
        }
      }
    };
    const accepted = () => outcomes.filter((o) => o.code === "ok").length;
    const load = Promise.all([client(), client(), client(), client()]);
    const moreAccepted = async (what: string) => {
      const before = accepted();
      await waitFor(what, async () => accepted() >= before + 5, 30_000, 50);
    };

    await moreAccepted("sends to go through");
    await postgres.halt(); // restart: every pooled session ends with 57P01
    await untilStatus(Serving.NOT_SERVING);
    await postgres.start();
    await untilStatus(Serving.SERVING);
    await moreAccepted("sends to go through after the restart");

    postgres.freeze(); // nothing answers, not even a timeout
    await untilStatus(Serving.NOT_SERVING);
    const frozenAt = outcomes.length;
    await waitFor("calls to be answered UNAVAILABLE while frozen", async () => outcomes.slice(frozenAt).some((o) => o.code === Code.Unavailable), 20_000, 50);
    postgres.thaw();
    await untilStatus(Serving.SERVING);
    await moreAccepted("sends to go through after the freeze");

    await postgres.halt(); // stopped for 10 s
    const haltedAt = outcomes.length;
    await untilStatus(Serving.NOT_SERVING);
    await new Promise((resolve) => setTimeout(resolve, 10_000)); // the outage itself, not a wait for a result
    expect(outcomes.slice(haltedAt).some((o) => o.code === Code.Unavailable)).toBe(true);
    await postgres.start();
    await untilStatus(Serving.SERVING);
    await moreAccepted("sends to go through after the outage");
    stopped = true;
    await load;

    expect(serve.exitCode()).toBe(null);
    const failures = outcomes.filter((o) => o.code !== "ok");
    expect(failures.filter((o) => o.code !== Code.Unavailable)).toEqual([]);
    expect(failures.filter((o) => o.tookMs > ANSWER_WITHIN_MS)).toEqual([]);
    const phones = outcomes.filter((o) => o.code === "ok").map((o) => o.phone);
    await waitFor("every accepted code to reach its phone", async () => phones.every((phone) => peer.sendsTo(phone).length > 0), 60_000, 200);
    expect(phones.filter((phone) => peer.sendsTo(phone).length !== 1)).toEqual([]);
    // No phone got two messages, accepted or not (a send answered UNAVAILABLE may still have committed, once).
    expect(new Set(peer.sends.map((s) => s.numbers[0])).size).toBe(peer.sends.length);
  }, 180_000);
});

describe("processes started before their dependencies", () => {
  it("serve opens its ports NOT_SERVING while PostgreSQL is down, answers UNAVAILABLE, and serves once it is up", async () => {
    const postgres = await startPostgres();
    const databaseUrl = await createTestDatabase(postgres.adminUrl);
    await postgres.halt();
    const serve = await startServiceProcess(
      ["serve"],
      {
        OTP_DATABASE_URL: databaseUrl,
        OTP_CALLERS: `checkout:${sha256(TOKEN)}`,
        OTP_MIGRATE_ON_START: "true",
        OTP_HOST: "127.0.0.1",
        OTP_CODE_HASH_KEY: TEST_KEYS.hashKey.toString("base64"),
        OTP_CODE_SEAL_KEY: TEST_KEYS.sealKey.toString("base64"),
      },
      "ports open; starting",
    );
    try {
      const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` });
      const health = createClient(Health, transport);
      const otp = createClient(OtpService, transport);
      const headers = { authorization: `Bearer ${TOKEN}` };
      expect((await health.check({ service: OtpService.typeName })).status).toBe(Serving.NOT_SERVING);
      await expect(otp.sendOtp({ destination: { phone: "+31655000001" } }, { headers })).rejects.toMatchObject({ code: Code.Unavailable });
      await postgres.start();
      await waitFor("health SERVING", async () => (await health.check({ service: OtpService.typeName })).status === Serving.SERVING, 30_000, 100);
      expect((await otp.sendOtp({ destination: { phone: "+31655000001" } }, { headers })).verificationId).toMatch(/^vrf_/);
      expect(serve.exitCode()).toBe(null);
    } finally {
      await serve.stop("SIGKILL");
      await postgres.stop();
    }
  }, 90_000);

  it("a worker waits for NATS that is not up yet, and consumes once it is", async () => {
    const nats = await startNats();
    await nats.kill();
    const postgres = await startPostgres();
    try {
      const env = {
        OTP_DATABASE_URL: await createTestDatabase(postgres.adminUrl),
        OTP_NATS_URL: nats.url,
        OTP_CODE_HASH_KEY: TEST_KEYS.hashKey.toString("base64"),
        OTP_CODE_SEAL_KEY: TEST_KEYS.sealKey.toString("base64"),
      };
      const worker = await startServiceProcess(["worker", "--channels", "sms"], env, "connecting to NATS (waiting for it if it is not up yet)");
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // NATS stays away a while: the worker must wait, not exit
      expect(worker.exitCode()).toBe(null);
      await nats.restart();
      await waitFor("the worker to consume", async () => worker.output().includes('"message":"consuming"'), 30_000, 100);
      expect(worker.exitCode()).toBe(null);
      await worker.stop("SIGKILL");
    } finally {
      await nats.stop();
      await postgres.stop();
    }
  }, 90_000);
});

describe("serve and worker while nats-server restarts under load", () => {
  it("keeps accepting sends while NATS is down, and then sends every accepted code exactly once", async () => {
    const postgres = await startPostgres();
    const nats = await startNats();
    const peer = await HttpRoutePeer.start({ apiKey: API_KEY, webhookSecret: "unused-secret" });
    const processes: ServiceProcess[] = [];
    try {
      const options = { databaseUrl: await createTestDatabase(postgres.adminUrl), natsUrl: nats.url, configFile: peer.writeConfigFile("2s"), env: { OTP_SENDS_PER_CALLER: "100000/1m", OTP_PUMPING_MODE: "off", OTP_SENDS_PER_NUMBER_RANGE: "off", OTP_WORKER_ACK_WAIT: "4s" } };
      const serve = await startServeProcess({ ...options, token: TOKEN });
      processes.push(serve);
      processes.push(await startWorkerProcess({ ...options, channels: "sms" }));
      const otp = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));

      const accepted: string[] = [];
      const failures: Array<Code> = [];
      let stopped = false;
      let sent = 0;
      const client = async () => {
        while (!stopped && sent < 2_000) {
          const phone = `+31656${String(++sent).padStart(6, "0")}`;
          try {
            await otp.sendOtp({ destination: { phone } }, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(30_000) });
            accepted.push(phone);
          } catch (error) {
            failures.push(ConnectError.from(error).code);
          }
        }
      };
      const load = Promise.all([client(), client()]);
      const more = async (what: string) => {
        const before = accepted.length;
        await waitFor(what, async () => accepted.length >= before + 10, 30_000, 50);
      };
      await more("sends to go through");
      await nats.kill();
      await more("sends to be accepted while NATS is down"); // the outbox holds them
      await nats.restart();
      await more("sends to go through after NATS is back");
      stopped = true;
      await load;

      expect(failures).toEqual([]);
      expect(processes.map((p) => p.exitCode())).toEqual([null, null]);
      await waitFor("every accepted code to reach its phone", async () => accepted.every((phone) => peer.sendsTo(phone).length > 0), 60_000, 200);
      expect(accepted.filter((phone) => peer.sendsTo(phone).length !== 1)).toEqual([]);
    } finally {
      for (const p of processes) await p.stop("SIGKILL");
      await peer.stop();
      await nats.stop();
      await postgres.stop();
    }
  }, 150_000);
});
