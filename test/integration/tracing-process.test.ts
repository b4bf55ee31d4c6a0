import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { freePort, waitFor } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { writeSmsThenEmailConfig } from "../harness/sms-email-config.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { OtlpPeer, type ReceivedSpan } from "../peers/otlp-peer.js";
import { SmtpPeer } from "../peers/smtp-peer.js";

const TOKEN = "trace-token";
const auth = (traceparent: string) => ({ headers: { authorization: `Bearer ${TOKEN}`, traceparent } });
const newTraceparent = () => `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;
const traceIdOf = (traceparent: string) => traceparent.split("-")[1]!;

/**
 * One verification's OpenTelemetry trace across processes: `serve` A takes the
 * calls, a `worker` sends, `serve` B receives the SMS's failed receipt, the
 * plan falls back to email, the code from the email approves — each process
 * exporting to an OTLP receiver on loopback.
 */
describe("one trace per verification, across processes", () => {
  let nats: RunningNats;
  let sms: HttpRoutePeer;
  let smtp: SmtpPeer;
  let otlp: OtlpPeer;
  const processes: ServiceProcess[] = [];
  let grpc: Client<typeof OtpService>;
  let connect: Client<typeof OtpService>;

  beforeAll(async () => {
    nats = await startNats();
    otlp = await OtlpPeer.start();
    sms = await HttpRoutePeer.start({ apiKey: "sms-key", webhookSecret: "sms-secret" });
    smtp = await SmtpPeer.start();
    const configFile = writeSmsThenEmailConfig(sms, smtp, TOKEN);
    const options: ProcessOptions = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, configFile };
    const serveA = await startServeProcess({ ...options, httpPort: await freePort(), env: otlp.envFor("serve-a") });
    processes.push(serveA);
    const serveB = await startServeProcess({ ...options, env: { ...otlp.envFor("serve-b"), OTP_MIGRATE_ON_START: "false" } });
    processes.push(serveB);
    // The provider reports to the other replica, as a load balancer in front of several would.
    sms.webhookUrl = `http://127.0.0.1:${serveB.httpPort}/webhooks/dlr/bridgex`;
    processes.push(await startWorkerProcess({ ...options, natsUrl: nats.url, env: otlp.envFor("worker") }));
    grpc = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serveA.grpcPort}` }));
    connect = createClient(OtpService, createConnectTransport({ baseUrl: `http://127.0.0.1:${serveA.httpPort}`, httpVersion: "1.1" }));
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) await p.stop("SIGKILL");
    await Promise.all([sms?.stop(), smtp?.stop(), otlp?.stop()]);
    await nats?.stop();
  });

  it("estimate → send → relay → worker → provider → receipt on another replica → fallback → email → verify: one trace, right parents, no secrets", async () => {
    const phone = `+3168${String(process.pid % 1000).padStart(3, "0")}4321`;
    const email = "traced@example.com";
    sms.onReceipt(phone, { status: "never" });

    const callerTrace = newTraceparent();
    const traceId = traceIdOf(callerTrace);
    const estimate = await grpc.estimateOtp({ destination: { phone, email } }, auth(callerTrace));
    // The send comes in another request of the caller's, bound to the estimate: it continues the estimate's trace.
    const sendTrace = newTraceparent();
    const sent = await grpc.sendOtp({ destination: { phone, email }, estimateId: estimate.estimateId }, auth(sendTrace));
    expect(sent.traceId).toBe(traceId);
    // The network's failed receipt, once the worker has recorded the send (earlier, it would be parked and applied by the worker).
    const submittedId = async () => (await grpc.getVerification({ verificationId: sent.verificationId }, auth(sendTrace))).verification?.attempts[0]?.providerMessageId;
    await waitFor("the SMS recorded as submitted", async () => Boolean(await submittedId()), 15_000);
    await sms.report((await submittedId())!, { status: "UNDELIVERED", errorCode: "absent_subscriber" });
    const mail = await smtp.nextMailTo(email, 30_000);
    const code = /(\d{6})/.exec(mail.subject)![1]!;
    // The user's sign-in request is a trace of its own: the check joins the verification's trace, linked to it.
    const signIn = newTraceparent();
    expect((await connect.verifyOtp({ verificationId: sent.verificationId, code }, auth(signIn))).status).toBe(VerifyStatus.APPROVED);

    const ours = () => otlp.spans.filter((s) => s.traceId === traceId);
    const named = (name: string) => ours().filter((s) => s.name === name);
    // A check that lost a race with the fallback's write reads again: a span each time, the last one approving.
    const approval = () => named("otp.verify").find((s) => s.attributes["otp.status"] === "APPROVED");
    await waitFor(
      "every step's span",
      async () => approval() !== undefined && named("provider.submit").length === 2 && named("otp.receipt").length >= 1 && named("otp.fallback").length === 1,
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; spans of the trace: ${ours().map((s) => `${s.service} ${s.name}`).join(", ")}`);
    });
    const one = (name: string): ReceivedSpan => {
      const spans = named(name);
      expect(spans, name).toHaveLength(1);
      return spans[0]!;
    };
    const byId = new Map(ours().map((s) => [s.spanId, s]));
    const parentOf = (span: ReceivedSpan) => byId.get(span.parentSpanId);

    // The API's steps continue the caller's trace.
    const estimateSpan = one("otp.estimate");
    expect(estimateSpan).toMatchObject({ service: "serve-a", attributes: { "otp.estimate_id": estimate.estimateId } });
    const send = one("otp.send");
    expect(parentOf(send)).toBe(estimateSpan);
    const sendRpc = otlp.spans.find((s) => s.name === "grpc.otp.v1.OtpService/SendOtp")!;
    expect(sendRpc.traceId).toBe(traceIdOf(sendTrace));
    expect(send.links).toContainEqual({ traceId: sendRpc.traceId, spanId: sendRpc.spanId });
    expect(send.attributes).toMatchObject({ "otp.verification_id": sent.verificationId, "otp.channel": "sms", "otp.route_id": "sms-nl-otp", "otp.price_micros": 72_000 });

    // SMS: relay (PRODUCER, under the send) → dispatch in the worker (CONSUMER) → the provider call (CLIENT).
    const [smsSubmit, emailSubmit] = ["sms", "email"].map((channel) => named("provider.submit").find((s) => parentOf(s)?.attributes["otp.channel"] === channel)!);
    expect(smsSubmit).toBeDefined();
    const smsDispatch = parentOf(smsSubmit!)!;
    expect(smsDispatch).toMatchObject({ name: "otp.dispatch", service: "worker", kind: 5 });
    const smsRelay = parentOf(smsDispatch)!;
    expect(smsRelay).toMatchObject({ name: "otp.outbox.relay", kind: 4 });
    expect(parentOf(smsRelay)).toBe(send);
    // pg's own spans (its instrumentation patches it as it loads: the build leaves it outside the bundle) are the
    // statements of these steps.
    const statementsUnder = (step: ReceivedSpan) => ours().filter((s) => s.attributes["db.system.name"] === "postgresql" && parentOf(s) === step);
    expect(statementsUnder(send).length).toBeGreaterThan(0);
    expect(statementsUnder(smsDispatch).length).toBeGreaterThan(0);
    const peerSend = sms.sendsTo(phone)[0]!;
    expect(smsSubmit!.attributes["otp.provider_message_id"]).toBe(peerSend.bxMessageId);
    expect(traceIdOf(peerSend.traceparent!)).toBe(traceId);

    // The failed receipt, taken by the other replica, is a child of the context stored with the SMS attempt (the send).
    const receipt = named("otp.receipt").find((s) => s.attributes["otp.status"] === "UNDELIVERED")!;
    expect(receipt).toMatchObject({ service: "serve-b", attributes: { "otp.provider_message_id": peerSend.bxMessageId } });
    expect(parentOf(receipt)).toBe(send);

    // The escalation, then email under it: relay → dispatch → SMTP.
    const fallback = one("otp.fallback");
    expect(parentOf(fallback)).toBe(send);
    expect(fallback.attributes).toMatchObject({ "otp.channel": "email", "otp.fallback.reason": "sms attempt undelivered (absent_subscriber)" });
    const emailDispatch = parentOf(emailSubmit!)!;
    expect(parentOf(parentOf(emailDispatch)!)).toBe(fallback);

    // The check: in the verification's trace, under the send, linked to the sign-in request's RPC span.
    const verify = approval()!;
    expect(parentOf(verify)).toBe(send);
    expect(verify.attributes).toMatchObject({ "otp.status": "APPROVED", "otp.channel": "email" });
    const rpc = otlp.spans.find((s) => s.name === "otp.v1.OtpService/VerifyOtp")!;
    expect(rpc).toMatchObject({ traceId: traceIdOf(signIn), kind: 2, attributes: { "rpc.system": "connect_rpc", "rpc.method": "VerifyOtp", "rpc.grpc.status_code": 0 } });
    expect(verify.links).toContainEqual({ traceId: rpc.traceId, spanId: rpc.spanId });

    // Only requests start traces: the loops' polling statements (relay, scheduler, sweeps) make no spans of their own.
    expect(otlp.spans.filter((s) => s.parentSpanId === "" && s.kind !== 2).map((s) => `${s.service} ${s.name}`)).toEqual([]);

    // No span anywhere holds the code, the phone number or the email address.
    const everything = JSON.stringify(otlp.spans);
    for (const secret of [code, phone, phone.slice(1), email, TOKEN]) expect(everything).not.toContain(secret);
    // Nor any process's log.
    const logs = processes.map((p) => p.output()).join("\n");
    for (const secret of [code, phone, phone.slice(1), email, TOKEN, "sms-key", "sms-secret"]) expect(logs).not.toContain(secret);
  }, 90_000);

  it("CancelOtp from a request of its own: otp.cancel in the verification's trace, under its send, linked to the request", async () => {
    const sendTrace = newTraceparent();
    const sent = await grpc.sendOtp({ destination: { email: "canceled@example.com" } }, auth(sendTrace));
    const cancelTrace = newTraceparent();
    await connect.cancelOtp({ verificationId: sent.verificationId }, auth(cancelTrace));

    const inTrace = () => otlp.spans.filter((s) => s.traceId === traceIdOf(sendTrace));
    await waitFor("the cancel's span", async () => inTrace().some((s) => s.name === "otp.cancel"), 15_000);
    const cancel = inTrace().find((s) => s.name === "otp.cancel")!;
    const send = inTrace().find((s) => s.name === "otp.send")!;
    expect(cancel).toMatchObject({ service: "serve-a", parentSpanId: send.spanId, attributes: { "otp.verification_id": sent.verificationId, "otp.status": "CANCELED" } });
    const rpc = otlp.spans.find((s) => s.name === "otp.v1.OtpService/CancelOtp")!;
    expect(rpc.traceId).toBe(traceIdOf(cancelTrace));
    expect(cancel.links).toContainEqual({ traceId: rpc.traceId, spanId: rpc.spanId });
  }, 30_000);
});
