import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AttemptStatus, DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { waitFor } from "../harness/free-port.js";
import { phoneSequence } from "../harness/phone-sequence.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { SmtpPeer } from "../peers/smtp-peer.js";

const TOKEN = "pipeline-test-token";
const API_KEY = "bx-test-key";
const WEBHOOK_SECRET = "dlr-test-secret";
const PROVIDER_TIMEOUT = "2s";

/**
 * The whole pipeline as separate processes: `serve` (API, outbox relay, receipt
 * webhook) and `worker` (JetStream consumer, http-route provider) on real
 * PostgreSQL and a nats-server of their own, sending to an SMS API peer on loopback.
 */
describe("delivery pipeline: serve and worker processes, JetStream, http-route SMS API", () => {
  let nats: RunningNats;
  let peer: HttpRoutePeer;
  let smtp: SmtpPeer;
  let options: ProcessOptions & { natsUrl: string };
  let serve: ServiceProcess;
  let worker: ServiceProcess;
  let client: Client<typeof OtpService>;
  const phone = phoneSequence("555");
  const headers = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    nats = await startNats();
    peer = await HttpRoutePeer.start({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET });
    smtp = await SmtpPeer.start();
    const dir = mkdtempSync(path.join(tmpdir(), "otp-pipeline-"));
    writeFileSync(path.join(dir, "api-key"), `${API_KEY}\n`);
    writeFileSync(
      path.join(dir, "otp.yaml"),
      [
        "providers:",
        "  bridgex:",
        "    type: http-route",
        `    base_url: ${peer.baseUrl}`,
        "    api_key_file: api-key",
        `    webhook_secret: ${WEBHOOK_SECRET}`,
        "    idempotency_key: true",
        `    timeout: ${PROVIDER_TIMEOUT}`,
        "  mail:",
        "    type: smtp",
        "    host: 127.0.0.1",
        `    port: ${smtp.port}`,
        `    timeout: ${PROVIDER_TIMEOUT}`,
        "routes:",
        '  - { id: email-otp, channel: email, provider: mail, traffic_class: otp, sender: "Acme <no-reply@acme.example>" }',
        "  - { id: sms-nl-otp, channel: sms, provider: bridgex, provider_route: 3, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.072 } }",
        "",
      ].join("\n"),
    );
    options = {
      databaseUrl: await createTestDatabase(inject("pgAdminUrl")),
      natsUrl: nats.url,
      configFile: path.join(dir, "otp.yaml"),
      env: { OTP_WORKER_ACK_WAIT: "4s" },
    };
    serve = await startServeProcess({ ...options, token: TOKEN });
    peer.webhookUrl = `http://127.0.0.1:${serve.httpPort}/webhooks/dlr/bridgex`;
    worker = await startWorkerProcess({ ...options, channels: "sms,email" });
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 120_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await serve?.stop("SIGKILL");
    await peer?.stop();
    await smtp?.stop();
    await nats?.stop();
  });

  const send = async (to: string, codeLength = 6) => (await client.sendOtp({ destination: { phone: to }, codeLength }, { headers })).verificationId;
  const attemptOf = async (verificationId: string) => (await client.getVerification({ verificationId }, { headers })).verification!.attempts[0]!;

  it("SendOtp → send_sms on the route's upstream route and sender → signed receipt → QUEUED, SUBMITTED, DELIVERED → the code approves", async () => {
    const to = phone();
    const verificationId = await send(to);
    const sent = await peer.nextSendTo(to);
    expect(sent).toMatchObject({ routeId: "3", callerId: "ACME", numbers: [to] });
    const events = await watchUntil(client, verificationId, (e) => e.kind === DeliveryEventKind.ATTEMPT_DELIVERED, { headers });
    const attemptEvents = events.filter((e) => e.attemptId !== "");
    expect(attemptEvents.map((e) => e.kind)).toEqual([DeliveryEventKind.ATTEMPT_QUEUED, DeliveryEventKind.ATTEMPT_SUBMITTED, DeliveryEventKind.ATTEMPT_DELIVERED]);
    expect(attemptEvents[1]).toMatchObject({ providerMessageId: sent.bxMessageId, routeId: "sms-nl-otp", price: { currencyCode: "EUR", amountMicros: 72_000n } });
    // One trace from the call to the provider request to the receipt.
    expect(sent.traceparent?.split("-")[1]).toBe(attemptEvents[2]!.traceId);
    const code = /^(\d{6}) /.exec(sent.message)![1]!;
    expect((await client.verifyOtp({ verificationId, code }, { headers })).status).toBe(VerifyStatus.APPROVED);
  });

  it("sends email through the SMTP server: the code in the subject approves", async () => {
    const to = `user${process.pid}@example.com`;
    const { verificationId } = await client.sendOtp({ destination: { email: to }, codeLength: 8 }, { headers });
    const mail = await smtp.nextMailTo(to);
    expect(mail.envelopeFrom).toBe("no-reply@acme.example");
    const code = /^(\d{8}) is your/.exec(mail.subject)![1]!;
    expect(mail.text).toContain(`${code.slice(0, 4)} ${code.slice(4)}`);
    await waitFor("the email attempt to be submitted", async () => (await attemptOf(verificationId)).status === AttemptStatus.SUBMITTED);
    expect((await client.verifyOtp({ verificationId, code }, { headers })).status).toBe(VerifyStatus.APPROVED);
  });

  it("matches a receipt that arrives before the worker has recorded the provider id", async () => {
    const to = phone();
    peer.onReceipt(to, { status: "DELIVERED", beforeAnswer: true });
    const verificationId = await send(to);
    await watchUntil(client, verificationId, (e) => e.kind === DeliveryEventKind.ATTEMPT_DELIVERED, { headers });
    expect(await attemptOf(verificationId)).toMatchObject({ status: AttemptStatus.DELIVERED, providerMessageId: (await peer.nextSendTo(to)).bxMessageId });
    // The receipt was parked: it reached us before the id existed in our store.
    expect(serve.output()).toContain("receipts parked for message ids not recorded yet");
  });

  it("answers 401 to a receipt with a bad signature and changes nothing; the signed one then applies", async () => {
    const to = phone();
    peer.onReceipt(to, { status: "never" });
    const verificationId = await send(to);
    const { bxMessageId } = await peer.nextSendTo(to);
    await waitFor("the attempt to be submitted", async () => (await attemptOf(verificationId)).status === AttemptStatus.SUBMITTED);
    expect(await peer.pushReceipt(bxMessageId, "UNDELIVERED", { secret: "not-the-secret" })).toBe(401);
    expect((await attemptOf(verificationId)).status).toBe(AttemptStatus.SUBMITTED);
    expect(await peer.pushReceipt(bxMessageId, "UNDELIVERED", { errorCode: "27" })).toBe(200);
    expect(await attemptOf(verificationId)).toMatchObject({ status: AttemptStatus.UNDELIVERED, providerErrorCode: "27" });
  });

  it("a worker killed after the provider call and before the ack: the next worker finishes the attempt and the peer sent it once", async () => {
    const to = phone();
    peer.onSend(to, { kind: "hold" });
    const verificationId = await send(to);
    const first = await peer.nextSendTo(to);
    expect(await worker.stop("SIGKILL")).toBe(null);
    worker = await startWorkerProcess({ ...options, channels: "sms,email" });
    // JetStream redelivers after the ack wait; the worker sees the recorded intent and repeats the
    // call with the same Idempotency-Key, which the API answers with the first message id.
    await waitFor("the attempt to be submitted", async () => (await attemptOf(verificationId)).status === AttemptStatus.SUBMITTED, 30_000, 200);
    expect(peer.requests.filter((n) => n === to)).toHaveLength(2);
    expect(peer.sendsTo(to)).toHaveLength(1);
    expect((await attemptOf(verificationId)).providerMessageId).toBe(first.bxMessageId);
    expect(worker.output()).toContain("repeating a send that may have reached the provider");
  });

  it("keeps accepting sends while nats-server is down, and delivers each exactly once when it is back", async () => {
    await nats.kill();
    const numbers = Array.from({ length: 5 }, phone);
    const sent = [];
    for (const to of numbers) sent.push(await send(to));
    expect(sent).toHaveLength(5);
    await nats.restart();
    await waitFor("every code sent", async () => numbers.every((to) => peer.sendsTo(to).length > 0), 60_000, 200);
    for (const to of numbers) expect(peer.sendsTo(to)).toHaveLength(1);
  });

  it("holds no plaintext code in the JetStream streams", async () => {
    await worker.stop("SIGTERM");
    const to = phone();
    await send(to, 8);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor("the dispatch message in its stream", async () => (await jsm.streams.info("OTP_DISPATCH")).state.messages > 0);
      let dump = "";
      for (const stream of ["OTP_DISPATCH", "OTP_EVENTS"]) {
        const { state } = await jsm.streams.info(stream);
        for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
          const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          if (message) dump += `${message.subject} ${Buffer.from(message.data).toString("latin1")} ${JSON.stringify(message.header)}\n`;
        }
      }
      worker = await startWorkerProcess({ ...options, channels: "sms,email" });
      const code = /^(\d{8}) /.exec((await peer.nextSendTo(to)).message)![1]!;
      expect(dump).toContain("otp.dispatch.sms");
      expect(dump).not.toContain(code);
      // Only 8-digit codes are checked: a 6-digit one could turn up by chance inside a hex id.
      const emailCode = /^(\d{8}) /.exec(smtp.received[0]!.subject)![1]!;
      expect(dump).not.toContain(emailCode);
    } finally {
      await nc.close();
    }
  });
});
