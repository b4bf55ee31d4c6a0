import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import { DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { waitFor } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";

const TOKEN = "rolling-token";
const headers = { authorization: `Bearer ${TOKEN}` };
/** Kubernetes' terminationGracePeriodSeconds as the chart sets it: past it the pod is killed. */
const GRACE_MS = 15_000;
const WATCHERS = 10;

/**
 * What a client may safely retry: UNAVAILABLE, and a stream the server refused after its GOAWAY (it never saw the
 * call; grpc-js reports it as UNAVAILABLE, connect-node as INTERNAL "NGHTTP2_REFUSED_STREAM").
 */
function retryable(error: unknown): boolean {
  const e = ConnectError.from(error);
  return e.code === Code.Unavailable || (e.code === Code.Internal && e.rawMessage.includes("NGHTTP2_REFUSED_STREAM"));
}

interface Watch {
  readonly sequences: number[];
  readonly lastKind: DeliveryEventKind | undefined;
  /** How many times the stream failed retryably (UNAVAILABLE) and was opened again after the last sequence seen. */
  readonly resumed: number;
}

/**
 * A rolling update as Kubernetes runs it (a replacement first, then SIGTERM to the old pod, which readiness takes
 * out of the endpoints), of `serve` and then of the `worker`, while four clients send codes without pause and ten
 * clients watch deliveries. The clients behave as generated clients in a mesh do: a call answered UNAVAILABLE is
 * retried with the same idempotency key, and a watch that ends UNAVAILABLE is opened again after its last sequence.
 */
describe("rolling restart of serve and worker under steady SendOtp load", () => {
  let nats: RunningNats;
  let peer: HttpRoutePeer;
  let processes: ServiceProcess[] = [];

  beforeAll(async () => {
    nats = await startNats();
  });
  beforeEach(async () => {
    // Each send takes the provider 40 ms: a worker stopped mid-load has provider calls in flight.
    peer = await HttpRoutePeer.start({ apiKey: "bx-key", webhookSecret: "bx-secret", send: { kind: "slow", ms: 40 } });
  });
  afterEach(async () => {
    for (const p of processes) await p.stop("SIGKILL");
    processes = [];
    await peer?.stop();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it.each([
    ["the endpoints follow readiness", true],
    // A mesh or kube-proxy slow to notice: calls reach the old replica until its ports close, and then are refused.
    ["the endpoints lag until the old pod is gone", false],
  ])("%s: no accepted send lost or sent twice, no dispatch message un-acked, every watcher resumed without a gap, each process exits 0 within the grace", async (_, followReadiness) => {
    const options: ProcessOptions & { natsUrl: string } = {
      databaseUrl: await createTestDatabase(inject("pgAdminUrl")),
      natsUrl: nats.url,
      configFile: peer.writeConfigFile("2s"),
      // A load of codes nobody types, to sequential numbers, is what SMS pumping looks like: the defences are not under test here.
      env: { OTP_SENDS_PER_CALLER: "100000/1m", OTP_PUMPING_MODE: "off", OTP_SENDS_PER_NUMBER_RANGE: "off", OTP_DRAIN_DELAY: "1s" },
    };
    const start = async (role: "serve" | "worker") => {
      const started = role === "serve" ? await startServeProcess({ ...options, token: TOKEN }) : await startWorkerProcess({ ...options, channels: "sms" });
      processes.push(started);
      return started;
    };
    const clients = new Map<number, Client<typeof OtpService>>();
    const otp = (port: number) => clients.get(port) ?? clients.set(port, createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }))).get(port)!;

    const serveA = await start("serve");
    const workerA = await start("worker");
    // What the Service's endpoints point at: the ready serve replica.
    let active = serveA;
    peer.webhookUrl = `http://127.0.0.1:${serveA.httpPort}/webhooks/dlr/bridgex`;

    const accepted: Array<{ phone: string; verificationId: string }> = [];
    const failures: string[] = [];
    let retried = 0;
    let stopped = false;
    let sent = 0;
    const sender = async () => {
      while (!stopped && sent < 4_000) {
        const n = ++sent;
        const phone = `+31657${String(n).padStart(6, "0")}`;
        for (let tries = 0; ; tries++) {
          try {
            const answer = await otp(active.grpcPort).sendOtp({ idempotencyKey: `rolling-${n}`, destination: { phone } }, { headers, signal: AbortSignal.timeout(20_000) });
            accepted.push({ phone, verificationId: answer.verificationId });
            break;
          } catch (error) {
            if (!retryable(error) || tries === 100) {
              failures.push(`${phone}: ${Code[ConnectError.from(error).code]} ${ConnectError.from(error).rawMessage}`);
              break;
            }
            retried++;
            await sleep(50);
          }
        }
        await sleep(10); // a steady stream, not a flood: the point is the restart, not saturation
      }
    };
    const load = Promise.all([sender(), sender(), sender(), sender()]);
    const moreAccepted = async (what: string, count = 40) => {
      const before = accepted.length;
      await waitFor(what, async () => accepted.length >= before + count, 30_000, 20);
    };
    const stopWithin = async (process: ServiceProcess) => {
      const began = Date.now();
      const exitCode = await process.stop("SIGTERM");
      return { exitCode, tookMs: Date.now() - began };
    };

    await moreAccepted("sends through serve A");
    // Watchers on A, for verifications whose events are still coming (delivered, then verified below).
    const watched = accepted.slice(-WATCHERS);
    const progress = new Map<string, number>();
    const watch = async (verificationId: string): Promise<Watch> => {
      const sequences: number[] = [];
      let lastKind: DeliveryEventKind | undefined;
      let resumed = 0;
      for (;;) {
        try {
          const stream = otp(active.grpcPort).watchDelivery({ verificationId, afterSequence: BigInt(sequences.at(-1) ?? 0) }, { headers, signal: AbortSignal.timeout(120_000) });
          for await (const { event } of stream) {
            if (event === undefined) continue;
            sequences.push(Number(event.sequence));
            lastKind = event.kind;
            progress.set(verificationId, sequences.length);
          }
          return { sequences, lastKind, resumed };
        } catch (error) {
          if (!retryable(error)) throw error;
          resumed++;
          await sleep(50);
        }
      }
    };
    const watches = watched.map((w) => watch(w.verificationId));
    await waitFor("every watcher to receive events from A", async () => watched.every((w) => (progress.get(w.verificationId) ?? 0) > 0), 30_000, 20);

    // serve: the replacement is ready, then the old replica gets SIGTERM; its readiness drops and the endpoints follow.
    const serveB = await start("serve");
    const serveStop = stopWithin(serveA);
    if (followReadiness) {
      const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serveA.grpcPort}` }));
      await waitFor("A's readiness to say NOT_SERVING", async () => (await health.check({ service: "" })).status === Serving.NOT_SERVING, 10_000, 20);
    } else {
      await serveStop;
    }
    active = serveB;
    peer.webhookUrl = `http://127.0.0.1:${serveB.httpPort}/webhooks/dlr/bridgex`;
    const serveExit = await serveStop;
    await moreAccepted("sends through serve B");

    // worker: the same, with the replacement consuming before the old one drains.
    await start("worker");
    const workerExit = await stopWithin(workerA);
    await moreAccepted("sends after the worker's restart");
    stopped = true;
    await load;

    // The watched verifications are approved with the codes their phones received, which ends every watch.
    for (const { phone, verificationId } of watched) {
      const code = /^(\d{6}) /.exec((await peer.nextSendTo(phone)).message)![1]!;
      expect((await otp(active.grpcPort).verifyOtp({ verificationId, code }, { headers })).status).toBe(VerifyStatus.APPROVED);
    }
    const watchResults = await Promise.all(watches);

    expect(serveExit.exitCode).toBe(0);
    expect(serveExit.tookMs).toBeLessThan(GRACE_MS);
    expect(workerExit.exitCode).toBe(0);
    expect(workerExit.tookMs).toBeLessThan(GRACE_MS);
    expect(failures).toEqual([]);
    for (const { sequences, lastKind, resumed } of watchResults) {
      expect(sequences).toEqual(sequences.map((_, i) => i + 1)); // 1, 2, 3, … : no gap, no repeat across the resume
      expect(lastKind).toBe(DeliveryEventKind.VERIFIED);
      expect(resumed).toBeGreaterThanOrEqual(1); // each was open on A when it stopped
    }
    await waitFor("every accepted code to reach its phone", async () => accepted.every(({ phone }) => peer.sendsTo(phone).length > 0), 60_000, 100);
    expect(accepted.filter(({ phone }) => peer.sendsTo(phone).length !== 1)).toEqual([]);
    // Not even a repeated provider call (which its idempotency key would have made harmless): in-flight sends finished.
    expect(peer.requests.length).toBe(new Set(peer.requests).size);
    expect(peer.sends.length).toBe(accepted.length);

    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor("the dispatch stream to be empty and nothing awaiting an ack", async () => {
        const consumer = await jsm.consumers.info("OTP_DISPATCH", "worker-sms");
        const stream = await jsm.streams.info("OTP_DISPATCH");
        return consumer.num_ack_pending === 0 && consumer.num_pending === 0 && stream.state.messages === 0;
      }, 30_000, 100);
    } finally {
      await nc.close();
    }
    expect([serveB.exitCode(), processes.at(-1)!.exitCode()]).toEqual([null, null]); // the replacements still run
  }, 240_000);
});
