import { execFileSync } from "node:child_process";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { freePort, waitFor } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { writeSmsThenEmailConfig } from "../harness/sms-email-config.js";
import { startServeProcess, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { SmtpPeer } from "../peers/smtp-peer.js";

const TOKEN = "metrics-token";
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

/** The samples of a Prometheus text exposition: `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    // Labels in a fixed order, without the scope's (otel_scope_*), so a test can name a series.
    const series = line.slice(0, at).replace(/\{(.*)\}$/, (_, labels: string) => {
      const kept = labels.split(/,(?=\w+=")/).filter((l) => !l.startsWith("otel_scope_")).sort();
      return kept.length > 0 ? `{${kept.join(",")}}` : "";
    });
    map.set(series, Number(line.slice(at + 1)));
  }
  return map;
}

/**
 * `GET /metrics` of a `serve` (its channel workers in process, so every series
 * is in one exposition) after real traffic: a delivered SMS verified after a
 * wrong code, an undelivered SMS rescued by email, an SMS the provider
 * refuses followed by email.
 */
describe("metrics after a run with deliveries, failures and a fallback", () => {
  let sms: HttpRoutePeer;
  let smtp: SmtpPeer;
  let serve: ServiceProcess;
  let client: Client<typeof OtpService>;
  const scrape = async () => (await fetch(`http://127.0.0.1:${serve.httpPort}/metrics`)).text();

  beforeAll(async () => {
    sms = await HttpRoutePeer.start({ apiKey: "sms-key", webhookSecret: "sms-secret" });
    smtp = await SmtpPeer.start();
    const configFile = writeSmsThenEmailConfig(sms, smtp, TOKEN);
    const httpPort = await freePort();
    serve = await startServeProcess({ databaseUrl: await createTestDatabase(inject("pgAdminUrl")), configFile, httpPort });
    sms.webhookUrl = `http://127.0.0.1:${httpPort}/webhooks/dlr/bridgex`;
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));
  }, 60_000);

  afterAll(async () => {
    await serve?.stop("SIGKILL");
    await Promise.all([sms?.stop(), smtp?.stop()]);
  });

  const eventually = (verificationId: string, kind: DeliveryEventKind) => watchUntil(client, verificationId, (e) => e.kind === kind, { ...auth, timeoutMs: 20_000 });

  it("counts sends, submissions, receipts, checks, escalations, rescues and cost exactly; promtool accepts the exposition", async () => {
    const base = `+3168${String(process.pid % 1000).padStart(3, "0")}`;
    const [delivered, undelivered, refused] = [`${base}1001`, `${base}1002`, `${base}1003`];
    sms.onReceipt(delivered, { status: "DELIVERED", afterMs: 2_000 });
    sms.onReceipt(undelivered, { status: "UNDELIVERED", errorCode: "absent_subscriber", afterMs: 500 });
    sms.onSend(refused, { kind: "fail", status: 400, error: "invalid destination" });

    // Delivered by SMS, a wrong code, then the right one.
    const first = await client.sendOtp({ destination: { phone: delivered } }, auth);
    const code = /(\d{6})/.exec((await sms.nextSendTo(delivered)).message)![1]!;
    await eventually(first.verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    const wrong = code === "000000" ? "111111" : "000000";
    expect((await client.verifyOtp({ verificationId: first.verificationId, code: wrong }, auth)).status).toBe(VerifyStatus.WRONG_CODE);
    expect((await client.verifyOtp({ verificationId: first.verificationId, code }, auth)).status).toBe(VerifyStatus.APPROVED);

    // Undelivered by SMS, rescued by the email step.
    const second = await client.sendOtp({ destination: { phone: undelivered, email: "rescued@example.com" } }, auth);
    const mailed = /(\d{6})/.exec((await smtp.nextMailTo("rescued@example.com", 20_000)).subject)![1]!;
    expect((await client.verifyOtp({ verificationId: second.verificationId, code: mailed }, auth)).status).toBe(VerifyStatus.APPROVED);

    // Refused by the SMS provider, then email (not verified). Its stream stays open while the metrics are read.
    const third = await client.sendOtp({ destination: { phone: refused, email: "refused@example.com" } }, auth);
    await smtp.nextMailTo("refused@example.com", 20_000);
    const watching = new AbortController();
    const stream = client.watchDelivery({ verificationId: third.verificationId }, { ...auth, signal: watching.signal })[Symbol.asyncIterator]();
    await stream.next();

    let metrics = new Map<string, number>();
    // Counted once recorded; the dispatch message is acknowledged just after.
    await waitFor(
      "the email submissions counted and acknowledged",
      async () => {
        metrics = samples(await scrape());
        return metrics.get('otp_provider_submits_total{channel="email",result="accepted",route="email-otp"}') === 2 && ["sms", "email"].every((c) => metrics.get(`otp_dispatch_pending{channel="${c}"}`) === 0);
      },
      10_000,
    );
    expect(Object.fromEntries([...metrics].filter(([name]) => name.startsWith("otp_") && !name.includes("_bucket")))).toEqual({
      'otp_sends_total{channel="sms",country="NL",route="sms-nl-otp"}': 3,
      'otp_sends_total{channel="email",country="NL",route="email-otp"}': 2,
      'otp_provider_submits_total{channel="sms",result="accepted",route="sms-nl-otp"}': 2,
      'otp_provider_submits_total{channel="sms",result="rejected",route="sms-nl-otp"}': 1,
      'otp_provider_submits_total{channel="email",result="accepted",route="email-otp"}': 2,
      'otp_provider_errors_total{code="http_400",provider="bridgex"}': 1,
      'otp_cost_micros_total{currency="EUR"}': 2 * 72_000 + 2 * 1_000,
      'otp_receipts_total{channel="sms",route="sms-nl-otp",status="DELIVERED"}': 1,
      'otp_receipts_total{channel="sms",route="sms-nl-otp",status="UNDELIVERED"}': 1,
      'otp_receipt_latency_seconds_count{channel="sms",route="sms-nl-otp"}': 1,
      'otp_receipt_latency_seconds_sum{channel="sms",route="sms-nl-otp"}': metrics.get('otp_receipt_latency_seconds_sum{channel="sms",route="sms-nl-otp"}'),
      'otp_verifications_total{channel="",country="NL",outcome="WRONG_CODE",route=""}': 1,
      'otp_verifications_total{channel="sms",country="NL",outcome="APPROVED",route="sms-nl-otp"}': 1,
      'otp_verifications_total{channel="email",country="NL",outcome="APPROVED",route="email-otp"}': 1,
      "otp_fallback_rescues_total": 1,
      'otp_fallback_escalations_total{reason="attempt_failed"}': 2,
      // Three sends one after the other: three groups of one, for the limits' statement and for the write.
      'otp_send_group_size_count{statement="admission"}': 3,
      'otp_send_group_size_sum{statement="admission"}': 3,
      'otp_send_group_size_count{statement="write"}': 3,
      'otp_send_group_size_sum{statement="write"}': 3,
      "otp_scheduler_lateness_seconds_count": 2,
      "otp_scheduler_lateness_seconds_sum": metrics.get("otp_scheduler_lateness_seconds_sum"),
      "otp_watch_streams": 1,
      "otp_outbox_backlog": metrics.get("otp_outbox_backlog"),
      // Nothing waits for a worker: every dispatch was taken and acknowledged.
      'otp_dispatch_pending{channel="sms"}': 0,
      'otp_dispatch_pending{channel="email"}': 0,
      'otp_dispatch_pending{channel="voice"}': 0,
      'otp_dispatch_pending{channel="push"}': 0,
      'otp_dispatch_pending{channel="whatsapp"}': 0,
    });
    // The SMS's receipt came about 2 s after its submission (the peer's delay), by the receipt's own time.
    expect(metrics.get('otp_receipt_latency_seconds_sum{channel="sms",route="sms-nl-otp"}')).toBeGreaterThanOrEqual(1.5);
    expect(metrics.get('otp_receipt_latency_seconds_bucket{channel="sms",le="5",route="sms-nl-otp"}')).toBe(1);
    expect(metrics.get("otp_outbox_backlog")).toBeGreaterThanOrEqual(0);

    watching.abort();
    await stream.return?.();
    await waitFor("the stream counted as closed", async () => samples(await scrape()).get("otp_watch_streams") === 0, 5_000);

    // The exposition passes Prometheus's own linter (Debian's prometheus package, installed by the test set-up).
    const checked = execFileSync("promtool", ["check", "metrics"], { input: await scrape(), encoding: "utf8" });
    expect(checked).toBe("");
  }, 60_000);
});
