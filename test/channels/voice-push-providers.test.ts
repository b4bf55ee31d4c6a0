import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { FcmProvider } from "../../src/channels/providers/fcm/fcm-provider.js";
import { VoiceHttpProvider } from "../../src/channels/providers/voice-http/voice-http-provider.js";
import { voiceHttpWebhook } from "../../src/channels/providers/voice-http/voice-http-receipts.js";
import { Secret } from "../../src/config/secret.js";
import { renderPush, renderVoice } from "../../src/domain/message.js";
import { signBody } from "../../src/receipts/signature.js";
import { FcmPeer } from "../peers/fcm-peer.js";
import { VoicePeer } from "../peers/voice-peer.js";
import { providerFailure } from "../harness/provider-failure.js";

describe("voice over an HTTP call API on loopback", () => {
  let peer: VoicePeer;
  const settings = (baseUrl: string) => ({
    name: "voice",
    type: "voice-http" as const,
    baseUrl,
    apiKey: new Secret("voice-key"),
    webhookSecret: new Secret("voice-secret"),
    statusCallbackUrl: "http://127.0.0.1:1/webhooks/dlr/voice",
    idempotencyKey: false,
    timeoutMs: 2_000,
  });
  beforeAll(async () => {
    peer = await VoicePeer.start("voice-key", "voice-secret");
  });
  afterAll(async () => {
    await peer?.stop();
  });

  it("places a call that says the code's digits twice in the request's language, with our status callback, and returns the call id", async () => {
    const message: OutboundMessage = {
      attemptId: "att-v1",
      verificationId: "vrf-v1",
      channel: "voice",
      providerRoute: "voice-otp",
      to: "+31612345678",
      sender: "+3185000000",
      text: renderVoice("482139", { brand: "Acme", locale: "de-AT" }),
      voiceLanguage: "de-AT",
    };
    peer.onCall(message.to, { status: "silent" });
    const result = await new VoiceHttpProvider(settings(peer.baseUrl)).submit(message, AbortSignal.timeout(2_000));
    const call = await peer.nextCallTo(message.to);
    expect(result).toEqual({ providerMessageId: call.callId, delivered: false });
    expect(call).toMatchObject({ from: "+3185000000", statusCallback: "http://127.0.0.1:1/webhooks/dlr/voice", clientReference: "att-v1", language: "de-AT" });
    expect(call.text).toContain("Ihr Bestätigungscode für Acme lautet: 4, 8, 2, 1, 3, 9.");
    expect(call.text.match(/4, 8, 2, 1, 3, 9/g)).toHaveLength(2);
    const wrongKey = new VoiceHttpProvider({ ...settings(peer.baseUrl), apiKey: new Secret("nope") });
    expect(await providerFailure(wrongKey.submit(message, AbortSignal.timeout(2_000)))).toMatchObject({ retryable: false, code: "auth" });
  });

  it("reads signed call-status callbacks as receipts: completed is delivered, no-answer and busy are not", () => {
    const webhook = voiceHttpWebhook(settings(peer.baseUrl));
    const body = (status: string) => Buffer.from(JSON.stringify({ call_id: "CA1", status }));
    expect(webhook.authenticate(body("completed"), { "x-signature": signBody("voice-secret", body("completed")) })).toBe(true);
    expect(webhook.authenticate(body("completed"), { "x-signature": signBody("other", body("completed")) })).toBe(false);
    expect(webhook.parse(body("completed"))).toMatchObject([{ provider: "voice", providerMessageId: "CA1", status: "DELIVERED" }]);
    expect(webhook.parse(body("no-answer"))).toMatchObject([{ status: "UNDELIVERED", errorCode: "no-answer" }]);
    expect(webhook.parse(body("busy"))).toMatchObject([{ status: "UNDELIVERED", errorCode: "busy" }]);
    expect(webhook.parse(body("failed"))).toMatchObject([{ status: "FAILED", errorCode: "failed" }]);
    expect(() => webhook.parse(body("exploded"))).toThrow();
  });
});

describe("push through FCM HTTP v1 on loopback", () => {
  let peer: FcmPeer;
  let provider: FcmProvider;
  let tokenFile: string;
  beforeAll(async () => {
    peer = await FcmPeer.start("acme-app", "ya29.test-token");
    tokenFile = path.join(mkdtempSync(path.join(tmpdir(), "otp-fcm-")), "token");
    writeFileSync(tokenFile, "ya29.test-token\n");
    provider = new FcmProvider({ name: "fcm", type: "fcm", baseUrl: peer.baseUrl, projectId: "acme-app", auth: { kind: "token-file", file: tokenFile }, timeoutMs: 2_000 });
  });
  afterAll(async () => {
    await peer?.stop();
  });

  const push = (token: string): OutboundMessage => {
    const rendered = renderPush("482139", { brand: "Acme" });
    return { attemptId: `att-${token}`, verificationId: "vrf-p1", channel: "push", providerRoute: "push-otp", to: token, sender: "Acme", subject: rendered.title, text: rendered.body };
  };

  it("sends the code as a high-priority notification with the ids as data; FCM's message name is the provider id", async () => {
    const result = await provider.submit(push("device-1"), AbortSignal.timeout(2_000));
    const sent = await peer.nextPushTo("device-1");
    expect(result).toEqual({ providerMessageId: sent.name, delivered: false });
    expect(sent.body).toContain("482139");
    expect(sent).toMatchObject({ data: { verification_id: "vrf-p1", attempt_id: "att-device-1" }, android: { priority: "high", ttl: "600s" } });
  });

  it("an unregistered token is permanent, UNAVAILABLE is retryable, and the token file is read on every send", async () => {
    peer.unregistered.add("gone");
    expect(await providerFailure(provider.submit(push("gone"), AbortSignal.timeout(2_000)))).toMatchObject({ retryable: false, code: "http_404" });
    peer.unavailableTimes = 1;
    expect(await providerFailure(provider.submit(push("device-2"), AbortSignal.timeout(2_000)))).toMatchObject({ retryable: true, code: "http_503" });
    writeFileSync(tokenFile, "ya29.rotated-away\n");
    expect(await providerFailure(provider.submit(push("device-2"), AbortSignal.timeout(2_000)))).toMatchObject({ retryable: false, code: "auth" });
    writeFileSync(tokenFile, "ya29.test-token\n");
    await provider.submit(push("device-2"), AbortSignal.timeout(2_000));
    expect(peer.messages.filter((m) => m.token === "device-2")).toHaveLength(1);
  });
});
