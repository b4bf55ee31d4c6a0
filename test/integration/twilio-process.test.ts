import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AttemptStatus, Channel, DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { sha256 } from "../harness/app-fixture.js";
import { freePort } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { TwilioPeer } from "../peers/twilio-peer.js";

const ACCOUNT = `AC${"d4".repeat(16)}`;
const TOKEN = "twilio-process-token";
const CALLER = "twilio-caller-token";

/**
 * Twilio as the SMS and voice provider of the real `serve` and `worker`: the
 * status callbacks come to serve's webhook signed as Twilio signs them, and
 * decide the plan — an SMS Twilio reports undelivered moves on to a call.
 */
describe("Twilio SMS and voice, as processes", () => {
  let nats: RunningNats;
  let twilio: TwilioPeer;
  let serve: ServiceProcess;
  let worker: ServiceProcess;
  let client: Client<typeof OtpService>;
  let options: ProcessOptions & { natsUrl: string };
  const auth = { headers: { authorization: `Bearer ${CALLER}` } };

  beforeAll(async () => {
    // A nats-server of its own: the shared one's streams belong to the bus contract tests.
    nats = await startNats();
    twilio = await TwilioPeer.start(ACCOUNT, TOKEN);
    const httpPort = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), "otp-twilio-"));
    writeFileSync(path.join(dir, "auth-token"), `${TOKEN}\n`);
    writeFileSync(
      path.join(dir, "otp.yaml"),
      [
        "providers:",
        `  twilio: { type: twilio, base_url: "${twilio.baseUrl}", account_sid: ${ACCOUNT}, auth_token_file: auth-token, status_callback_url: "http://127.0.0.1:${httpPort}/webhooks/dlr/twilio", timeout: 2s }`,
        "routes:",
        "  - { id: sms-twilio, channel: sms, provider: twilio, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.08 } }",
        "  - { id: voice-twilio, channel: voice, provider: twilio, traffic_class: otp, sender: '+3185000000', countries: [NL], prices: { NL: 0.15 } }",
        "policies:",
        "  default:",
        "    steps:",
        "      - { channel: sms, deadline: 20s, escalate_when: undelivered }",
        "      - { channel: voice, deadline: 30s, escalate_when: unverified }",
        "callers:",
        `  shop: { token_sha256: ${sha256(CALLER)} }`,
        "",
      ].join("\n"),
    );
    options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, configFile: path.join(dir, "otp.yaml"), httpPort, env: { OTP_WORKER_ACK_WAIT: "4s" } };
    serve = await startServeProcess(options);
    worker = await startWorkerProcess(options);
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 120_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await serve?.stop("SIGKILL");
    await twilio?.stop();
    await nats?.stop();
  });

  const eventsUntil = (verificationId: string, last: DeliveryEventKind) => watchUntil(client, verificationId, (e) => e.kind === last, auth);

  it("an SMS Twilio delivers is DELIVERED by its signed callback", async () => {
    const { verificationId } = await client.sendOtp({ destination: { phone: "+31612349001" } }, auth);
    const events = await eventsUntil(verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    expect(events.at(-1)).toMatchObject({ kind: DeliveryEventKind.ATTEMPT_DELIVERED, channel: Channel.SMS, routeId: "sms-twilio" });
    expect((await twilio.nextRequestTo("+31612349001")).resource).toBe("Messages");
  });

  it("an SMS Twilio reports undelivered (30003) falls back to a call at once, and the code it says approves", async () => {
    const phone = "+31612349002";
    twilio.on(phone, { kind: "accept", callbacks: [{ MessageStatus: "sent" }, { MessageStatus: "undelivered", ErrorCode: "30003" }] });
    const { verificationId } = await client.sendOtp({ destination: { phone } }, auth);
    const events = await eventsUntil(verificationId, DeliveryEventKind.FALLBACK_TRIGGERED);
    expect(events.find((e) => e.kind === DeliveryEventKind.ATTEMPT_FAILED)).toMatchObject({ status: AttemptStatus.UNDELIVERED, providerErrorCode: "twilio_30003" });
    // Well before the SMS step's 20 s deadline: the receipt said the SMS would not come.
    expect(events.at(-1)!.reason).toContain("next: voice");
    twilio.on(phone, { kind: "accept", callbacks: [{ CallStatus: "completed" }] });
    const callRequest = await twilio.nextRequestTo(phone, 20_000, "Calls");
    const code = /((?:\d, ){5}\d)/.exec(callRequest.fields.Twiml ?? "")![1]!.replaceAll(", ", "");
    expect((await client.verifyOtp({ verificationId, code }, auth)).status).toBe(VerifyStatus.APPROVED);
  });
  const attemptsOf = async (verificationId: string) => (await client.getVerification({ verificationId }, auth)).verification!.attempts;

  it("takes status callbacks early (before the API's answer), repeated and out of order as one delivery", async () => {
    const phone = "+31612349003";
    twilio.on(phone, { kind: "accept", beforeAnswer: true, callbacks: [{ MessageStatus: "delivered" }, { MessageStatus: "sent" }, { MessageStatus: "delivered" }] });
    const { verificationId } = await client.sendOtp({ destination: { phone } }, auth);
    await eventsUntil(verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    const request = await twilio.nextRequestTo(phone);
    // A failure reported after the delivery changes nothing: statuses only move forward.
    expect(await twilio.callBack(request.fields.StatusCallback, { MessageSid: request.sid, MessageStatus: "undelivered", ErrorCode: "30003" })).toBe(200);
    const attempts = await attemptsOf(verificationId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status: AttemptStatus.DELIVERED, providerMessageId: request.sid, providerErrorCode: "" });
  });

  it("a worker killed while Twilio holds the send: not sent again (no idempotency key), and the plan moves to the call", async () => {
    const phone = "+31612349004";
    twilio.on(phone, { kind: "hold" });
    const { verificationId } = await client.sendOtp({ destination: { phone } }, auth);
    await twilio.nextRequestTo(phone, 15_000, "Messages");
    expect(await worker.stop("SIGKILL")).toBe(null);
    worker = await startWorkerProcess(options);
    const events = await eventsUntil(verificationId, DeliveryEventKind.FALLBACK_TRIGGERED);
    expect(events.find((e) => e.kind === DeliveryEventKind.ATTEMPT_FAILED)).toMatchObject({ channel: Channel.SMS, providerErrorCode: "outcome_unknown" });
    expect(twilio.requests.filter((r) => r.fields.To === phone && r.resource === "Messages")).toHaveLength(1);
  });
});
