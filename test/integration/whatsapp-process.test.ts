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
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { WhatsAppPeer } from "../peers/whatsapp-peer.js";

const TOKEN = "whatsapp-caller-token";
const ACCESS_TOKEN = "EAAJB-process-token";
const APP_SECRET = "meta-app-secret-process";
const VERIFY_TOKEN = "verify-me-process";
const PHONE_NUMBER_ID = "106540352242922";

/**
 * WhatsApp first, SMS as its fallback, through the real `serve` and `worker`: the Cloud API peer takes the template
 * and posts its statuses to serve's webhook signed as Meta signs them — early, late, repeated and out of order — and
 * a worker killed in the middle of a send does not send it twice.
 */
describe("WhatsApp authentication templates with SMS fallback, as processes", () => {
  let nats: RunningNats;
  let whatsapp: WhatsAppPeer;
  let sms: HttpRoutePeer;
  let options: ProcessOptions & { natsUrl: string };
  let serve: ServiceProcess;
  let worker: ServiceProcess;
  let client: Client<typeof OtpService>;
  const headers = { authorization: `Bearer ${TOKEN}` };
  const phone = phoneSequence("444");

  beforeAll(async () => {
    nats = await startNats();
    whatsapp = await WhatsAppPeer.start({ accessToken: ACCESS_TOKEN, appSecret: APP_SECRET, templates: { verification_code: ["en_US", "nl"] } });
    sms = await HttpRoutePeer.start({ apiKey: "bx-key", webhookSecret: "bx-secret" });
    const dir = mkdtempSync(path.join(tmpdir(), "otp-whatsapp-"));
    writeFileSync(path.join(dir, "wa-token"), `${ACCESS_TOKEN}\n`);
    writeFileSync(
      path.join(dir, "otp.yaml"),
      [
        "providers:",
        `  wa: { type: whatsapp-cloud, base_url: "${whatsapp.baseUrl}", access_token_file: wa-token, app_secret: ${APP_SECRET}, verify_token: ${VERIFY_TOKEN}, template: { name: verification_code, languages: [en_US, nl] }, timeout: 2s }`,
        `  bridgex: { type: http-route, base_url: "${sms.baseUrl}", api_key: bx-key, webhook_secret: bx-secret, timeout: 2s }`,
        "routes:",
        `  - { id: wa-otp, channel: whatsapp, provider: wa, traffic_class: otp, sender: "${PHONE_NUMBER_ID}", countries: [NL], prices: { NL: 0.0368 } }`,
        "  - { id: sms-nl-otp, channel: sms, provider: bridgex, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.072 } }",
        "policies:",
        "  default:",
        "    steps:",
        "      - { channel: whatsapp, deadline: 20s, escalate_when: undelivered }",
        "      - { channel: sms, deadline: 30s, escalate_when: unverified }",
        "  quick:",
        "    steps:",
        "      - { channel: whatsapp, deadline: 2s, escalate_when: undelivered }",
        "      - { channel: sms, deadline: 30s, escalate_when: unverified }",
        "",
      ].join("\n"),
    );
    options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, configFile: path.join(dir, "otp.yaml"), env: { OTP_WORKER_ACK_WAIT: "4s" } };
    serve = await startServeProcess({ ...options, token: TOKEN });
    whatsapp.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/wa`;
    sms.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/bridgex`;
    worker = await startWorkerProcess({ ...options, channels: "whatsapp,sms" });
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 120_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await serve?.stop("SIGKILL");
    await Promise.all([whatsapp?.stop(), sms?.stop()]);
    await nats?.stop();
  });

  const send = async (to: string, extra: { policy?: string; locale?: string } = {}) => (await client.sendOtp({ destination: { phone: to }, ...extra }, { headers })).verificationId;
  const attemptsOf = async (verificationId: string) => (await client.getVerification({ verificationId }, { headers })).verification!.attempts;
  const until = (verificationId: string, kind: DeliveryEventKind) => watchUntil(client, verificationId, (e) => e.kind === kind, { headers });
  /** Resolves once the peer has posted `count` statuses of the message and serve answered each. */
  const statusesAnswered = (messageId: string, count: number) =>
    waitFor(`${count} statuses of ${messageId} answered`, async () => whatsapp.statusesPosted.filter((s) => s.messageId === messageId && s.answer === 200).length >= count);

  it("answers Meta's subscription handshake with the challenge, and refuses a wrong verify token", async () => {
    expect(await whatsapp.subscribe(VERIFY_TOKEN, "843102")).toEqual({ status: 200, body: "843102" });
    expect((await whatsapp.subscribe("not-our-token")).status).toBe(403);
  });

  it("sends the template in the locale's language; its statuses make the attempt DELIVERED in one trace; the code approves", async () => {
    const to = phone();
    const verificationId = await send(to, { locale: "nl-NL" });
    const message = await whatsapp.nextMessageTo(to);
    expect(message).toMatchObject({ phoneNumberId: PHONE_NUMBER_ID, template: "verification_code", language: "nl" });
    const events = (await until(verificationId, DeliveryEventKind.ATTEMPT_DELIVERED)).filter((e) => e.attemptId !== "");
    expect(events.map((e) => e.kind)).toEqual([DeliveryEventKind.ATTEMPT_QUEUED, DeliveryEventKind.ATTEMPT_SUBMITTED, DeliveryEventKind.ATTEMPT_DELIVERED]);
    expect(events[1]).toMatchObject({ channel: Channel.WHATSAPP, routeId: "wa-otp", providerMessageId: message.id, price: { currencyCode: "EUR", amountMicros: 36_800n } });
    expect(message.traceparent?.split("-")[1]).toBe(events[2]!.traceId);
    expect((await client.verifyOtp({ verificationId, code: message.code }, { headers })).status).toBe(VerifyStatus.APPROVED);
  });

  it("matches a status that arrives before the worker has recorded the message id", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "accept", statuses: [{ status: "delivered", beforeAnswer: true }] });
    const verificationId = await send(to);
    await until(verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    expect((await attemptsOf(verificationId))[0]).toMatchObject({ status: AttemptStatus.DELIVERED, providerMessageId: (await whatsapp.nextMessageTo(to)).id });
    expect(serve.output()).toContain("receipts parked for message ids not recorded yet");
  });

  it("takes statuses repeated and out of order (read before delivered, a failure after them) as one delivery", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "accept", statuses: [{ status: "read" }, { status: "delivered" }, { status: "delivered" }, { status: "sent" }, { status: "failed" }] });
    const verificationId = await send(to);
    const { id } = await whatsapp.nextMessageTo(to);
    await statusesAnswered(id, 5);
    const attempts = await attemptsOf(verificationId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ status: AttemptStatus.DELIVERED, providerErrorCode: "" });
    expect(sms.requests).not.toContain(to);
  });

  it("a failed status (not on WhatsApp, 131026) moves to SMS at once, and the SMS code approves", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "accept", statuses: [{ status: "sent" }, { status: "failed", errorCode: 131026 }] });
    const verificationId = await send(to);
    const events = await until(verificationId, DeliveryEventKind.FALLBACK_TRIGGERED);
    expect(events.find((e) => e.kind === DeliveryEventKind.ATTEMPT_FAILED)).toMatchObject({ channel: Channel.WHATSAPP, status: AttemptStatus.FAILED, providerErrorCode: "whatsapp_131026" });
    expect(events.at(-1)!.reason).toContain("next: sms");
    const code = /^(\d{6}) /.exec((await sms.nextSendTo(to)).message)![1]!;
    expect((await client.verifyOtp({ verificationId, code }, { headers })).status).toBe(VerifyStatus.APPROVED);
  });

  it("retries a throughput limit (130429) and sends once", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "error", status: 400, code: 130429, message: "(#130429) Rate limit hit", times: 1 });
    const verificationId = await send(to);
    await until(verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    expect(whatsapp.requests.filter((r) => r === to)).toHaveLength(2);
    expect(whatsapp.messages.filter((m) => m.to === to)).toHaveLength(1);
  });

  it("a delivery reported after the plan moved on is recorded as a late receipt (the SMS was needless)", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "accept", statuses: [{ status: "sent" }, { status: "delivered", delayMs: 4_000 }] });
    const verificationId = await send(to, { policy: "quick" });
    await until(verificationId, DeliveryEventKind.FALLBACK_TRIGGERED);
    await sms.nextSendTo(to);
    await waitFor("the late delivery to be recorded", async () => (await attemptsOf(verificationId))[0]!.status === AttemptStatus.DELIVERED, 15_000, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${serve.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/otp_late_receipts_total\{[^}]*channel="whatsapp"[^}]*\} 1\b/);
  });

  it("a worker killed while WhatsApp holds the send: the next worker does not send it again, and the plan moves to SMS", async () => {
    const to = phone();
    whatsapp.on(to, { kind: "hold" });
    const verificationId = await send(to);
    await whatsapp.nextRequestTo(to);
    expect(await worker.stop("SIGKILL")).toBe(null);
    worker = await startWorkerProcess({ ...options, channels: "whatsapp,sms" });
    // No idempotency key exists on the Cloud API: a send that may have gone out is never repeated.
    const events = await until(verificationId, DeliveryEventKind.FALLBACK_TRIGGERED);
    expect(events.find((e) => e.kind === DeliveryEventKind.ATTEMPT_FAILED)).toMatchObject({ channel: Channel.WHATSAPP, providerErrorCode: "outcome_unknown" });
    await sms.nextSendTo(to);
    expect(whatsapp.requests.filter((r) => r === to)).toHaveLength(1);
  });
});
