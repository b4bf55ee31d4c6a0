import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { HttpRouteProvider, type HttpRouteSettings } from "../../src/channels/providers/http-route/http-route-provider.js";
import { httpRoutePoller, httpRouteWebhook } from "../../src/channels/providers/http-route/http-route-receipts.js";
import { Secret } from "../../src/config/secret.js";
import { signBody } from "../../src/receipts/signature.js";
import { freePort } from "../harness/free-port.js";
import { HttpRoutePeer } from "../peers/http-route-peer.js";
import { providerFailure } from "../harness/provider-failure.js";

const API_KEY = "bx-live-key-123";
const WEBHOOK_SECRET = "dlr-secret";

function settings(baseUrl: string, overrides: Partial<HttpRouteSettings> = {}): HttpRouteSettings {
  return {
    name: "bridgex",
    type: "http-route",
    baseUrl,
    apiKey: new Secret(API_KEY),
    webhookSecret: new Secret(WEBHOOK_SECRET),
    receipts: "both",
    pollIntervalMs: 1_000,
    idempotencyKey: true,
    timeoutMs: 2_000,
    ...overrides,
  };
}

let n = 0;
function message(to = `+3161234${String(++n).padStart(4, "0")}`): OutboundMessage {
  return {
    attemptId: `att-${n}-${Date.now()}`,
    verificationId: "vrf-1",
    channel: "sms",
    providerRoute: "3",
    to,
    sender: "ACME",
    text: "123456 is your Acme verification code.",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  };
}

describe("http-route SMS provider against its API on loopback", () => {
  let peer: HttpRoutePeer;
  let provider: HttpRouteProvider;
  beforeAll(async () => {
    peer = await HttpRoutePeer.start({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, prices: { "3": 0.072 }, balance: 0.1 });
    provider = new HttpRouteProvider(settings(peer.baseUrl));
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it("sends route_id, caller_id, numbers and message with the API key, and returns the bx_message_id", async () => {
    const m = message();
    const result = await provider.submit(m, AbortSignal.timeout(2_000));
    const [sent] = peer.sendsTo(m.to);
    expect(result).toEqual({ providerMessageId: sent!.bxMessageId, delivered: false });
    expect(sent).toMatchObject({ routeId: "3", callerId: "ACME", numbers: [m.to], message: m.text, idempotencyKey: m.attemptId, traceparent: m.traceparent });
  });

  it("passes the attempt id as Idempotency-Key: a repeated submit gets the first id and sends nothing", async () => {
    const m = message();
    const first = await provider.submit(m, AbortSignal.timeout(2_000));
    const again = await provider.submit(m, AbortSignal.timeout(2_000));
    expect(again.providerMessageId).toBe(first.providerMessageId);
    expect(peer.sendsTo(m.to)).toHaveLength(1);
  });

  it("classifies 5xx and 429 as retryable, other 4xx as permanent, a bad key as permanent auth — never echoing the key", async () => {
    const busy = message();
    peer.onSend(busy.to, { kind: "fail", status: 503, error: "upstream busy" });
    expect(await providerFailure(provider.submit(busy, AbortSignal.timeout(2_000)))).toMatchObject({ retryable: true, ambiguous: false, code: "http_503" });
    const limited = message();
    peer.onSend(limited.to, { kind: "fail", status: 429 });
    expect(await providerFailure(provider.submit(limited, AbortSignal.timeout(2_000)))).toMatchObject({ retryable: true, code: "http_429" });
    const bad = message();
    peer.onSend(bad.to, { kind: "fail", status: 400, error: "number not mobile" });
    const rejected = await providerFailure(provider.submit(bad, AbortSignal.timeout(2_000)));
    expect(rejected).toMatchObject({ retryable: false, code: "http_400" });
    expect(rejected.message).toContain("number not mobile");
    const wrongKey = new HttpRouteProvider(settings(peer.baseUrl, { apiKey: new Secret("not-the-key") }));
    const refused = await providerFailure(wrongKey.submit(message(), AbortSignal.timeout(2_000)));
    expect(refused).toMatchObject({ retryable: false, code: "auth" });
    expect(refused.message).not.toContain("not-the-key");
    expect(peer.sendsTo(busy.to)).toHaveLength(0);
  });

  it("treats no answer in time as retryable and possibly sent; a refused connection as retryable and not sent", async () => {
    const held = message();
    peer.onSend(held.to, { kind: "hold" });
    expect(await providerFailure(provider.submit(held, AbortSignal.timeout(200)))).toMatchObject({ retryable: true, ambiguous: true, code: "timeout" });
    const closed = new HttpRouteProvider(settings(`http://127.0.0.1:${await freePort()}`));
    expect(await providerFailure(closed.submit(message(), AbortSignal.timeout(2_000)))).toMatchObject({ retryable: true, ambiguous: false, code: "unreachable" });
  });

  it("asks for an estimate with the same body", async () => {
    expect(await provider.estimate(message(), AbortSignal.timeout(2_000))).toEqual({ estimatedCost: 0.072, currency: "EUR", balance: 0.1, sufficientBalance: true });
  });

  it("polls /api/v1/dlr/{id}: en route, then the final status with its error code", async () => {
    const m = message();
    peer.onReceipt(m.to, { status: "never" });
    const { providerMessageId } = await provider.submit(m, AbortSignal.timeout(2_000));
    const poller = httpRoutePoller(settings(peer.baseUrl))!;
    expect(await poller.poll(providerMessageId, AbortSignal.timeout(2_000))).toMatchObject({ provider: "bridgex", providerMessageId, status: "SUBMITTED" });

    const failed = message();
    peer.onReceipt(failed.to, { status: "UNDELIVERED", errorCode: "27", push: false });
    const second = await provider.submit(failed, AbortSignal.timeout(2_000));
    const polled = async () => poller.poll(second.providerMessageId, AbortSignal.timeout(2_000));
    await expect.poll(polled, { timeout: 5_000 }).toMatchObject({ status: "UNDELIVERED", errorCode: "27" });
  });

  it("accepts a webhook body only with the HMAC-SHA-256 signature of its exact bytes", () => {
    const webhook = httpRouteWebhook(settings(peer.baseUrl))!;
    const body = Buffer.from(JSON.stringify([{ bx_message_id: "bx-1", status: "DELIVRD" }, { bx_message_id: 7, status: "expired", error_code: "EXP" }]));
    expect(webhook.authenticate(body, { "x-signature": signBody(WEBHOOK_SECRET, body) })).toBe(true);
    expect(webhook.authenticate(body, { "x-signature": signBody("wrong", body) })).toBe(false);
    expect(webhook.authenticate(Buffer.concat([body, Buffer.from(" ")]), { "x-signature": signBody(WEBHOOK_SECRET, body) })).toBe(false);
    expect(webhook.authenticate(body, {})).toBe(false);
    expect(webhook.parse(body)).toMatchObject([
      { provider: "bridgex", providerMessageId: "bx-1", status: "DELIVERED" },
      { provider: "bridgex", providerMessageId: "7", status: "EXPIRED", errorCode: "EXP" },
    ]);
    expect(() => webhook.parse(Buffer.from('{"bx_message_id":"x","status":"weird"}'))).toThrow();
  });
});
