import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Channel, DeliveryEventKind } from "../../gen/otp/v1/common_pb.js";
import { OtpService, VerifyStatus } from "../../gen/otp/v1/otp_service_pb.js";
import { artifactPath, launchChromium } from "../harness/browser.js";
import { freePort } from "../harness/free-port.js";
import { createTestDatabase } from "../harness/postgres.js";
import { startServeProcess, type ServiceProcess } from "../harness/service-process.js";
import { watchUntil } from "../harness/watch-delivery.js";
import { writeSmsThenEmailConfig } from "../harness/sms-email-config.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { SmtpPeer } from "../peers/smtp-peer.js";

const TOKEN = "dashboard-token";
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

/**
 * `/dashboard` in headless Chromium against a `serve` (real PostgreSQL, providers on loopback) after real traffic:
 * an SMS delivered and approved, an undelivered SMS rescued by email, an SMS the provider refuses followed by an
 * email nobody uses. The page signs in with a caller token, draws its charts from GetDeliveryStats, and shows a
 * verification's timeline from GetVerification.
 */
describe("the delivery dashboard in Chromium", () => {
  let sms: HttpRoutePeer;
  let smtp: SmtpPeer;
  let serve: ServiceProcess;
  let client: Client<typeof OtpService>;
  let browser: Browser;
  let rescued: string;

  beforeAll(async () => {
    sms = await HttpRoutePeer.start({ apiKey: "sms-key", webhookSecret: "sms-secret" });
    smtp = await SmtpPeer.start();
    const httpPort = await freePort();
    const configFile = writeSmsThenEmailConfig(sms, smtp, TOKEN);
    [serve, browser] = await Promise.all([
      startServeProcess({ databaseUrl: await createTestDatabase(inject("pgAdminUrl")), configFile, httpPort }),
      launchChromium(),
    ]);
    sms.webhookUrl = `http://127.0.0.1:${httpPort}/webhooks/dlr/bridgex`;
    client = createClient(OtpService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${serve.grpcPort}` }));

    const base = `+3162${String(process.pid % 1000).padStart(3, "0")}`;
    const [delivered, undelivered, refused] = [`${base}2001`, `${base}2002`, `${base}2003`];
    sms.onReceipt(delivered, { status: "DELIVERED", afterMs: 1_000 });
    sms.onReceipt(undelivered, { status: "UNDELIVERED", errorCode: "absent_subscriber", afterMs: 300 });
    sms.onSend(refused, { kind: "fail", status: 400, error: "invalid destination" });

    const first = await client.sendOtp({ destination: { phone: delivered } }, auth);
    const code = /(\d{6})/.exec((await sms.nextSendTo(delivered)).message)![1]!;
    await eventually(first.verificationId, DeliveryEventKind.ATTEMPT_DELIVERED);
    expect((await client.verifyOtp({ verificationId: first.verificationId, code }, auth)).status).toBe(VerifyStatus.APPROVED);

    const second = await client.sendOtp({ destination: { phone: undelivered, email: "rescued@example.com" } }, auth);
    const mailed = /(\d{6})/.exec((await smtp.nextMailTo("rescued@example.com", 20_000)).subject)![1]!;
    expect((await client.verifyOtp({ verificationId: second.verificationId, code: mailed }, auth)).status).toBe(VerifyStatus.APPROVED);
    rescued = second.verificationId;

    const third = await client.sendOtp({ destination: { phone: refused, email: "refused@example.com" } }, auth);
    await smtp.nextMailTo("refused@example.com", 20_000);
    await eventually(third.verificationId, DeliveryEventKind.ATTEMPT_SUBMITTED, Channel.EMAIL);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await serve?.stop("SIGKILL");
    await Promise.all([sms?.stop(), smtp?.stop()]);
  });

  /** Waits for an event of this kind (on this channel, when given). */
  const eventually = (verificationId: string, kind: DeliveryEventKind, channel?: Channel) =>
    watchUntil(client, verificationId, (e) => e.kind === kind && (channel === undefined || e.channel === channel), { ...auth, timeoutMs: 20_000 });

  const texts = (page: Page, selector: string) => page.locator(selector).allInnerTexts();

  it("asks for a token, draws the run's figures, and shows a verification's timeline with its trace id", async () => {
    const url = `http://127.0.0.1:${serve.httpPort}/dashboard`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
    page.on("pageerror", (error) => problems.push(error.message));

    const response = await page.goto(url);
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    await expect(page.locator("#sign-in").isVisible()).resolves.toBe(true);

    // A wrong token is refused by the API and the page asks again.
    await page.fill("#token", "not-a-token");
    await page.click("#sign-in button");
    await page.locator("#sign-in-error", { hasText: "unknown bearer token" }).waitFor();
    expect(await page.locator("#board").isVisible()).toBe(false);

    await page.fill("#token", TOKEN);
    await page.click("#sign-in button");
    await page.waitForSelector("body[data-stats=loaded]");
    await page.selectOption("#window", "3600");
    await page.waitForSelector("body[data-stats=loaded]");
    // The token lives in this tab's sessionStorage only.
    expect(await page.evaluate('[sessionStorage.getItem("otp-dashboard-token"), localStorage.length, document.cookie]')).toEqual([TOKEN, 0, ""]);

    // Totals: 3 SMS + 2 emails queued; two approvals; the refused SMS cost nothing.
    const figure = (id: string) => page.locator(`[data-figure="${id}"] b`).innerText();
    expect(await figure("attempts")).toBe("5");
    expect(await figure("approved")).toBe("2");
    expect(await figure("cost")).toBe("EUR 0.1460");
    expect(await figure("cost-per-approval")).toBe("EUR 0.0730");

    // Both routes are charted with points, drawn by uPlot on canvases.
    for (const chart of ["#delivery-chart", "#latency-chart"]) {
      expect(await page.locator(`${chart} canvas`).count()).toBeGreaterThan(0);
      expect(Number(await page.locator(chart).getAttribute("data-points"))).toBeGreaterThanOrEqual(2);
    }
    expect(await page.locator("#delivery-chart").getAttribute("data-series")).toBe("email-otp,sms-nl-otp");
    expect(await page.locator("#latency-chart").getAttribute("data-series")).toBe("email-otp p50,email-otp p95,sms-nl-otp p50,sms-nl-otp p95");
    expect(await texts(page, "#delivery-chart .u-legend .u-label")).toEqual(expect.arrayContaining(["email-otp", "sms-nl-otp"]));

    // The funnel: three begun by SMS, one delivered, two fell back; approved once by SMS, once by email.
    const stages = await page.locator("#funnel [data-stage]").evaluateAll((rows) => rows.map((r) => [r.getAttribute("data-stage"), r.querySelector(".count")?.textContent]));
    expect(stages).toEqual([
      ["begun", "3"],
      ["delivered", "1"],
      ["escalated", "2"],
      ["approved-sms", "1"],
      ["approved-email", "1"],
    ]);
    expect(await texts(page, '#countries tr[data-country="NL"] td')).toEqual(["NL", "3", expect.stringMatching(/ %$/), "2", "66.7 %"]);

    // The lookup: the rescued verification's attempts, provider ids, fallback and approval, and its trace id.
    const { verification, events } = await client.getVerification({ verificationId: rescued }, auth);
    await page.fill("#lookup-id", rescued);
    await page.click("#lookup button");
    await page.waitForSelector("#verification:not([hidden])");
    expect(await page.locator("#trace-id").innerText()).toBe(verification!.traceId);
    expect(verification!.traceId).toMatch(/^[0-9a-f]{32}$/);
    const providerIds = await page.locator("#attempts tbody tr td:nth-child(5)").allInnerTexts();
    expect(providerIds).toEqual(verification!.attempts.map((a) => a.providerMessageId));
    expect(providerIds.every((id) => id !== "")).toBe(true);
    const kinds = await page.locator("#timeline tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-kind")));
    expect(kinds).toEqual(events.map((e) => `DELIVERY_EVENT_KIND_${DeliveryEventKind[e.kind]}`));
    expect(kinds).toEqual(expect.arrayContaining(["DELIVERY_EVENT_KIND_FALLBACK_TRIGGERED", "DELIVERY_EVENT_KIND_VERIFIED"]));
    await page.screenshot({ path: artifactPath("dashboard.png"), fullPage: true });

    // An unknown id is said so, next to the form.
    await page.fill("#lookup-id", "vrf_00000000000000000000000000000000");
    await page.click("#lookup button");
    await page.locator("#lookup-error", { hasText: /not found/i }).waitFor();

    // Nothing failed in the page (a script error, a blocked resource, a CSP violation) but the API's answers to the
    // wrong token (401) and the unknown id (404), which Chromium logs.
    expect(problems.filter((p) => !/status of (401|404)\b/.test(p))).toEqual([]);
    await page.close();
  }, 60_000);
});
