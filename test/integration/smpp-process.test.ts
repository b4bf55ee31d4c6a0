import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AttemptStatus, Channel, DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { waitFor } from "../harness/free-port.js";
import { phoneSequence } from "../harness/phone-sequence.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { SmscPeer } from "../peers/smsc-peer.js";

const TOKEN = "smpp-caller-token";

/**
 * SMPP as the SMS provider of the real `serve` and `worker`: the worker binds to the SMSC, its receipts come back
 * on the bind and are stored by the worker; a worker killed with a submit outstanding does not send it again.
 */
describe("SMS over SMPP, as processes", () => {
  let nats: RunningNats;
  let smsc: SmscPeer;
  let options: ProcessOptions & { natsUrl: string };
  let serve: ServiceProcess;
  let worker: ServiceProcess;
  let client: Client<typeof OtpService>;
  const headers = { authorization: `Bearer ${TOKEN}` };
  const phone = phoneSequence("333");

  beforeAll(async () => {
    nats = await startNats();
    smsc = await SmscPeer.start("acme", "s3cret");
    const dir = mkdtempSync(path.join(tmpdir(), "otp-smpp-"));
    writeFileSync(path.join(dir, "smpp-password"), "s3cret\n");
    writeFileSync(
      path.join(dir, "otp.yaml"),
      [
        "providers:",
        `  carrier: { type: smpp, host: 127.0.0.1, port: ${smsc.port}, system_id: acme, password_file: smpp-password, binds: 2, timeout: 2s }`,
        "routes:",
        "  - { id: sms-smpp, channel: sms, provider: carrier, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.05 } }",
        "",
      ].join("\n"),
    );
    options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, configFile: path.join(dir, "otp.yaml"), env: { OTP_WORKER_ACK_WAIT: "4s" } };
    serve = await startServeProcess({ ...options, token: TOKEN });
    worker = await startWorkerProcess({ ...options, channels: "sms" });
    await smsc.untilBound(2);
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 120_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await serve?.stop("SIGKILL");
    await smsc?.stop();
    await nats?.stop();
  });

  const send = async (to: string) => (await client.sendOtp({ destination: { phone: to } }, { headers })).verificationId;
  const attemptsOf = async (verificationId: string) => (await client.getVerification({ verificationId }, { headers })).verification!.attempts;

  it("submit_sm → the SMSC's id → its deliver_sm receipt (before the response, here) → DELIVERED; the code approves", async () => {
    const to = phone();
    smsc.on(to.slice(1), { kind: "accept", receipts: [{ stat: "DELIVRD", beforeResponse: true }] });
    const verificationId = await send(to);
    const events = (await watchUntil(client, verificationId, (e) => e.kind === DeliveryEventKind.ATTEMPT_DELIVERED, { headers })).filter((e) => e.attemptId !== "");
    const taken = await smsc.nextSubmitTo(to.slice(1));
    expect(events.map((e) => e.kind)).toEqual([DeliveryEventKind.ATTEMPT_QUEUED, DeliveryEventKind.ATTEMPT_SUBMITTED, DeliveryEventKind.ATTEMPT_DELIVERED]);
    expect(events[1]).toMatchObject({ channel: Channel.SMS, routeId: "sms-smpp", providerMessageId: taken.messageId });
    const code = /^(\d{6}) /.exec(taken.text)![1]!;
    expect((await client.verifyOtp({ verificationId, code }, { headers })).status).toBe(VerifyStatus.APPROVED);
  });

  it("an UNDELIV receipt fails the attempt with the SMSC's error", async () => {
    const to = phone();
    smsc.on(to.slice(1), { kind: "accept", receipts: [{ stat: "UNDELIV", err: "027" }] });
    const verificationId = await send(to);
    const events = await watchUntil(client, verificationId, (e) => e.kind === DeliveryEventKind.ATTEMPT_FAILED, { headers });
    expect(events.at(-1)).toMatchObject({ status: AttemptStatus.UNDELIVERED, providerErrorCode: "smpp_err_027" });
  });

  it("a worker killed with a submit outstanding: the next worker binds again and does not send it twice", async () => {
    const to = phone();
    smsc.on(to.slice(1), { kind: "hold" });
    const verificationId = await send(to);
    await smsc.nextRequestTo(to.slice(1));
    expect(await worker.stop("SIGKILL")).toBe(null);
    worker = await startWorkerProcess({ ...options, channels: "sms" });
    await waitFor("the attempt to end", async () => (await attemptsOf(verificationId))[0]!.status === AttemptStatus.FAILED, 30_000, 200);
    expect((await attemptsOf(verificationId))[0]).toMatchObject({ providerErrorCode: "outcome_unknown" });
    expect(smsc.requests.filter((r) => r === to.slice(1))).toHaveLength(1);
  });
});
