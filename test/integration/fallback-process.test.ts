import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AttemptStatus, Channel, DeliveryEventKind, type DeliveryEvent } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { sha256 } from "../harness/app-fixture.js";
import { freePort, waitFor } from "../harness/free-port.js";
import { startNats, type RunningNats } from "../harness/nats.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, startWorkerProcess, type ProcessOptions, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { FcmPeer } from "../peers/fcm-peer.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { SmtpPeer } from "../peers/smtp-peer.js";
import { VoicePeer } from "../peers/voice-peer.js";

const TOKENS = { checkout: "checkout-token", broke: "broke-token", thrifty: "thrifty-token" } as const;
const FAST_DEADLINE_MS = 8_000;

/**
 * Routing, balance and multi-channel fallback as separate processes: `serve`
 * (one, then two replicas) and a `worker` on real PostgreSQL and nats-server,
 * with an SMS API, an SMTP server, a voice-call API and FCM on loopback.
 */
describe("fallback across channels on durable deadlines, as processes", () => {
  let nats: RunningNats;
  let sms: HttpRoutePeer;
  let smtp: SmtpPeer;
  let voice: VoicePeer;
  let fcm: FcmPeer;
  let options: ProcessOptions & { natsUrl: string; httpPort: number };
  let serve: ServiceProcess;
  let worker: ServiceProcess;
  let client: Client<typeof OtpService>;
  let n = 0;
  const nlMobile = () => `+31687${String(process.pid % 100).padStart(2, "0")}${String(++n).padStart(4, "0")}`;
  const auth = (caller: keyof typeof TOKENS) => ({ headers: { authorization: `Bearer ${TOKENS[caller]}` } });

  beforeAll(async () => {
    nats = await startNats();
    sms = await HttpRoutePeer.start({ apiKey: "sms-key", webhookSecret: "sms-secret" });
    smtp = await SmtpPeer.start();
    voice = await VoicePeer.start("voice-key", "voice-secret");
    fcm = await FcmPeer.start("acme-app", "fcm-token");
    const httpPort = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), "otp-fallback-"));
    writeFileSync(path.join(dir, "fcm-token"), "fcm-token\n");
    const step = (channel: string, deadline: string, when: string) => `      - { channel: ${channel}, deadline: ${deadline}, escalate_when: ${when} }`;
    writeFileSync(
      path.join(dir, "otp.yaml"),
      [
        "providers:",
        `  bridgex: { type: http-route, base_url: "${sms.baseUrl}", api_key: sms-key, webhook_secret: sms-secret, idempotency_key: true, timeout: 2s }`,
        `  mail: { type: smtp, host: 127.0.0.1, port: ${smtp.port}, timeout: 2s }`,
        `  voice: { type: voice-http, base_url: "${voice.baseUrl}", api_key: voice-key, webhook_secret: voice-secret, status_callback_url: "http://127.0.0.1:${httpPort}/webhooks/dlr/voice", timeout: 2s }`,
        `  fcm: { type: fcm, base_url: "${fcm.baseUrl}", project_id: acme-app, access_token_file: fcm-token, timeout: 2s }`,
        "routes:",
        "  - { id: sms-nl-otp, channel: sms, provider: bridgex, provider_route: 3, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.072 } }",
        "  - { id: sms-promo, channel: sms, provider: bridgex, traffic_class: marketing, sender: DEALS, countries: [NL, BE], prices: { '*': 0.02 } }",
        "  - { id: sms-eu-otp, channel: sms, provider: bridgex, traffic_class: otp, sender: ACME, countries: [BE, DE], prices: { '*': 0.09 } }",
        '  - { id: email-otp, channel: email, provider: mail, traffic_class: otp, sender: "Acme <no-reply@acme.example>", prices: { "*": 0.001 } }',
        "  - { id: voice-otp, channel: voice, provider: voice, traffic_class: otp, sender: '+3185000000', countries: [NL, BE], prices: { '*': 0.15 } }",
        "  - { id: push-otp, channel: push, provider: fcm, traffic_class: otp, sender: Acme }",
        "policies:",
        "  default:",
        "    steps:",
        step("sms", "15s", "undelivered"),
        step("email", "30s", "unverified"),
        step("voice", "30s", "unverified"),
        step("push", "30s", "unverified"),
        "  fast:",
        "    steps:",
        step("sms", `${FAST_DEADLINE_MS}ms`, "undelivered"),
        step("email", "60s", "unverified"),
        "callers:",
        `  checkout: { token_sha256: ${sha256(TOKENS.checkout)}, countries: [NL, BE], credit: { currency: EUR, amount: 100 } }`,
        `  broke: { token_sha256: ${sha256(TOKENS.broke)}, credit: { currency: EUR, amount: 0 } }`,
        `  thrifty: { token_sha256: ${sha256(TOKENS.thrifty)}, credit: { currency: EUR, amount: 0.2 } }`,
        "",
      ].join("\n"),
    );
    options = { databaseUrl: await createTestDatabase(inject("pgAdminUrl")), natsUrl: nats.url, configFile: path.join(dir, "otp.yaml"), httpPort };
    serve = await startServeProcess(options);
    sms.webhookUrl = `http://127.0.0.1:${httpPort}/webhooks/dlr/bridgex`;
    worker = await startWorkerProcess(options);
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 120_000);

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await serve?.stop("SIGKILL");
    await Promise.all([sms?.stop(), smtp?.stop(), voice?.stop(), fcm?.stop()]);
    await nats?.stop();
  });

  const watch = (verificationId: string, until: (e: DeliveryEvent) => boolean, timeoutMs: number) => watchUntil(client, verificationId, until, { ...auth("checkout"), timeoutMs });
  const at = (e: DeliveryEvent | undefined) => timestampDate(e!.occurredAt!).getTime();
  const refusal = async (work: Promise<unknown>) => {
    const error = await work.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.FailedPrecondition);
    return error!.rawMessage;
  };

  it("SMS without a receipt → email after 15 s → voice after 30 s; the code from the call approves; every attempt shows route, price and reason", async () => {
    const phone = nlMobile();
    const email = `flow${n}@example.com`;
    sms.onReceipt(phone, { status: "never" });
    const { verificationId } = await client.sendOtp({ destination: { phone, email } }, auth("checkout"));
    const call = voice.nextCallTo(phone, 90_000);
    const watched = watch(verificationId, (e) => e.kind === DeliveryEventKind.VERIFIED, 120_000);
    const code = /((?:\d, ){5}\d)/.exec((await call).text)![1]!.replaceAll(", ", "");
    expect((await client.verifyOtp({ verificationId, code }, auth("checkout"))).status).toBe(VerifyStatus.APPROVED);
    const events = await watched;

    const queued = events.filter((e) => e.kind === DeliveryEventKind.ATTEMPT_QUEUED);
    expect(queued.map((e) => [e.channel, e.routeId, e.price?.amountMicros])).toEqual([
      [Channel.SMS, "sms-nl-otp", 72_000n],
      [Channel.EMAIL, "email-otp", 1_000n],
      [Channel.VOICE, "voice-otp", 150_000n],
    ]);
    const fallbacks = events.filter((e) => e.kind === DeliveryEventKind.FALLBACK_TRIGGERED);
    expect(fallbacks.map((e) => e.reason)).toEqual(["no sms delivery receipt within 15 s; next: email", "email code not used within 30 s; next: voice"]);
    // The durable deadlines, read off the events' own times: 15 s after the SMS, 30 s after the email.
    expect(at(queued[1]) - at(queued[0])).toBeGreaterThanOrEqual(15_000);
    expect(at(queued[1]) - at(queued[0])).toBeLessThan(16_500);
    expect(at(queued[2]) - at(queued[1])).toBeGreaterThanOrEqual(30_000);
    expect(at(queued[2]) - at(queued[1])).toBeLessThan(31_500);
    // The email carried a code of its own: the approval names the call, whose code was typed.
    expect((await smtp.nextMailTo(email)).subject).toMatch(/\d{6}/);
    expect((await smtp.nextMailTo(email)).subject).not.toContain(code);
    expect(events.at(-1)).toMatchObject({ kind: DeliveryEventKind.VERIFIED, channel: Channel.VOICE });
    // Approval stops the plan: the push step never comes, and nothing is left queued.
    const { verification } = await client.getVerification({ verificationId }, auth("checkout"));
    expect(verification!.attempts.map((a) => a.channel)).toEqual([Channel.SMS, Channel.EMAIL, Channel.VOICE]);
    expect(verification!.attempts.some((a) => a.status === AttemptStatus.QUEUED)).toBe(false);
  }, 150_000);

  it("prices a four-step plan, refuses a caller who cannot pay, and never overdraws under parallel sends", async () => {
    const destination = { phone: nlMobile(), email: "four@example.com", pushToken: "device-four" };
    const estimate = await client.estimateOtp({ destination }, auth("checkout"));
    expect(estimate.steps.map((s) => [s.channel, s.routeId, s.totalPrice?.amountMicros])).toEqual([
      [Channel.SMS, "sms-nl-otp", 72_000n],
      [Channel.EMAIL, "email-otp", 1_000n],
      [Channel.VOICE, "voice-otp", 150_000n],
      [Channel.PUSH, "push-otp", 0n],
    ]);
    expect(estimate).toMatchObject({ firstStepTotal: { currencyCode: "EUR", amountMicros: 72_000n }, worstCaseTotal: { amountMicros: 223_000n }, sufficientBalance: true });
    expect(estimate.estimateId).not.toBe("");
    const bound = await client.sendOtp({ destination, estimateId: estimate.estimateId }, auth("checkout"));
    expect(bound.priceQuoted?.amountMicros).toBe(72_000n);

    expect((await client.estimateOtp({ destination: { phone: nlMobile() } }, auth("broke"))).sufficientBalance).toBe(false);
    const broke = nlMobile();
    expect(await refusal(client.sendOtp({ destination: { phone: broke } }, auth("broke")))).toBe("balance 0.00 EUR cannot pay the sms step (0.072 EUR)");

    const results = await Promise.allSettled(Array.from({ length: 8 }, () => client.sendOtp({ destination: { phone: nlMobile() } }, auth("thrifty"))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(2);
    const db = new pg.Client({ connectionString: options.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query("select balance_micros from caller_balances where caller_id = 'thrifty'");
      expect(Number(rows[0].balance_micros)).toBe(56_000);
    } finally {
      await db.end();
    }
    expect(sms.sendsTo(broke)).toEqual([]);
  });

  it("refuses, naming why: a pinned marketing route, a route not serving the country, a disallowed country, a premium-rate number", async () => {
    const pin = (routeId: string) => [{ channel: Channel.SMS, routeId }];
    expect(await refusal(client.sendOtp({ destination: { phone: nlMobile() }, overrides: pin("sms-promo") }, auth("checkout")))).toBe(
      "route sms-promo carries marketing traffic; OTP needs an otp route",
    );
    expect(await refusal(client.sendOtp({ destination: { phone: "+32470123456" }, overrides: pin("sms-nl-otp") }, auth("checkout")))).toBe("route sms-nl-otp does not serve BE");
    expect(await refusal(client.sendOtp({ destination: { phone: "+4915112345678" } }, auth("checkout")))).toBe("sending to DE is not allowed for caller checkout");
    expect(await refusal(client.sendOtp({ destination: { phone: "+31906123456" } }, auth("checkout")))).toMatch(/is a premium-rate number/);
  });

  it("serve restarted in the middle of a plan: the next step still fires within 1 s of its deadline", async () => {
    const phone = nlMobile();
    sms.onReceipt(phone, { status: "never" });
    const { verificationId } = await client.sendOtp({ destination: { phone, email: `restart${n}@example.com` }, policy: "fast" }, auth("checkout"));
    await serve.stop("SIGKILL");
    serve = await startServeProcess(options);
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
    const events = await watch(verificationId, (e) => e.kind === DeliveryEventKind.ATTEMPT_QUEUED && e.channel === Channel.EMAIL, 30_000);
    const queued = events.filter((e) => e.kind === DeliveryEventKind.ATTEMPT_QUEUED);
    const late = at(queued[1]) - (at(queued[0]) + FAST_DEADLINE_MS);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1_000);
  });

  it("two serve replicas: each step fires exactly once", async () => {
    const second = await startServeProcess({ ...options, httpPort: await freePort() });
    try {
      const ids = [];
      for (let i = 0; i < 6; i++) {
        const phone = nlMobile();
        sms.onReceipt(phone, { status: "never" });
        ids.push((await client.sendOtp({ destination: { phone, email: `twin${n}@example.com` }, policy: "fast" }, auth("checkout"))).verificationId);
      }
      for (const verificationId of ids) {
        await waitFor("the email step", async () => (await client.getVerification({ verificationId }, auth("checkout"))).verification!.attempts.length >= 2, 30_000, 200);
      }
      // Past the email step's queueing: nothing more may arrive from a second firing.
      for (const verificationId of ids) {
        const details = await client.getVerification({ verificationId }, auth("checkout"));
        expect(details.verification!.attempts.map((a) => a.channel)).toEqual([Channel.SMS, Channel.EMAIL]);
        expect(details.events.filter((e) => e.kind === DeliveryEventKind.FALLBACK_TRIGGERED)).toHaveLength(1);
      }
      expect(serve.output() + second.output()).not.toContain('"level":"error"');
    } finally {
      await second.stop("SIGTERM");
    }
  });
});
