import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { TwilioProvider, type TwilioSettings } from "../../src/channels/providers/twilio/twilio-provider.js";
import { twilioWebhook } from "../../src/channels/providers/twilio/twilio-receipts.js";
import { twilioSignature } from "../../src/channels/providers/twilio/twilio-signature.js";
import { parseConfigFile } from "../../src/config/config-file.js";
import { Secret } from "../../src/config/secret.js";
import { renderSms, renderVoice } from "../../src/domain/message.js";
import { providerFailure } from "../harness/provider-failure.js";
import { TwilioPeer } from "../peers/twilio-peer.js";

const ACCOUNT = `AC${"a1".repeat(16)}`;
const TOKEN = "twilio-auth-token";
const API_KEY = { sid: `SK${"b2".repeat(16)}`, secret: "api-key-secret" };
const CALLBACK = "https://otp.example.com/webhooks/dlr/twilio";

describe("Twilio's request signature", () => {
  it("matches Twilio's published example", () => {
    const params = new URLSearchParams({ CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" });
    expect(twilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)).toBe("0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
  });
});

describe("SMS and voice through a Twilio-compatible API on loopback", () => {
  let peer: TwilioPeer;
  beforeAll(async () => {
    peer = await TwilioPeer.start(ACCOUNT, TOKEN, API_KEY);
  });
  afterAll(async () => {
    await peer?.stop();
  });

  const settings = (extra: Record<string, unknown> = {}): TwilioSettings =>
    parseConfigFile(
      { providers: { twilio: { type: "twilio", base_url: peer.baseUrl, account_sid: ACCOUNT, auth_token: TOKEN, status_callback_url: CALLBACK, timeout: "2s", ...extra } } },
      "/",
    ).routing.providers[0] as TwilioSettings;
  const sms = (to: string): OutboundMessage => ({ attemptId: `att-${to}`, verificationId: "vrf-t", channel: "sms", providerRoute: "sms-twilio", to, sender: "ACME", text: renderSms("482139", { brand: "Acme" }).text });
  const call = (to: string): OutboundMessage => ({ ...sms(to), channel: "voice", sender: "+3185000000", text: renderVoice("482139", { brand: "Acme & Co", locale: "nl-BE" }), voiceLanguage: "nl-BE" });
  const submit = (provider: TwilioProvider, message: OutboundMessage) => provider.submit(message, AbortSignal.timeout(2_000));

  it("sends an SMS with the account's credentials and our status callback; Twilio's sid is the provider id", async () => {
    const result = await submit(new TwilioProvider(settings()), sms("+31612340001"));
    const request = await peer.nextRequestTo("+31612340001");
    expect(result).toEqual({ providerMessageId: request.sid, delivered: false });
    expect(request).toMatchObject({ resource: "Messages", user: ACCOUNT, fields: { To: "+31612340001", From: "ACME", StatusCallback: CALLBACK } });
    expect(request.fields.Body).toContain("482139");
  });

  it("sends from a Messaging Service and with an API key when configured", async () => {
    const service = `MG${"c3".repeat(16)}`;
    await submit(new TwilioProvider(settings({ messaging_service_sid: service, api_key_sid: API_KEY.sid, api_key_secret: API_KEY.secret })), sms("+31612340002"));
    const request = await peer.nextRequestTo("+31612340002");
    expect(request).toMatchObject({ user: API_KEY.sid, fields: { MessagingServiceSid: service } });
    expect(request.fields.From).toBeUndefined();
  });

  it("places a call whose TwiML says the spaced digits twice in the request's language, escaped", async () => {
    await submit(new TwilioProvider(settings()), call("+31612340003"));
    const request = await peer.nextRequestTo("+31612340003");
    expect(request).toMatchObject({ resource: "Calls", fields: { From: "+3185000000", StatusCallback: CALLBACK } });
    expect(request.fields.Twiml).toBe('<Response><Say language="nl-BE">Je verificatiecode voor Acme &amp; Co is: 4, 8, 2, 1, 3, 9. Nogmaals, je code is: 4, 8, 2, 1, 3, 9.</Say></Response>');
  });

  it("reads Twilio's error codes: a bad number is permanent, rate limits and Twilio's trouble are retried", async () => {
    const provider = new TwilioProvider(settings());
    peer.on("+31612340010", { kind: "error", status: 400, code: 21211, message: "The 'To' number +31612340010 is not a valid phone number." });
    peer.on("+31612340011", { kind: "error", status: 400, code: 21610, message: "Attempt to send to unsubscribed recipient" });
    peer.on("+31612340012", { kind: "error", status: 429, code: 20429, message: "Too Many Requests" });
    peer.on("+31612340013", { kind: "error", status: 503, code: 20503, message: "Service unavailable" });
    expect(await providerFailure(submit(provider, sms("+31612340010")))).toMatchObject({ retryable: false, code: "twilio_21211" });
    expect(await providerFailure(submit(provider, sms("+31612340011")))).toMatchObject({ retryable: false, code: "twilio_21610" });
    expect(await providerFailure(submit(provider, sms("+31612340012")))).toMatchObject({ retryable: true, code: "twilio_20429" });
    expect(await providerFailure(submit(provider, sms("+31612340013")))).toMatchObject({ retryable: true, code: "twilio_20503" });
    expect(await providerFailure(submit(new TwilioProvider(settings({ auth_token: "wrong" })), sms("+31612340014")))).toMatchObject({ retryable: false, code: "auth" });
    expect(await providerFailure(submit(provider, { ...sms("a@b.example"), channel: "email" }))).toMatchObject({ retryable: false, code: "unsupported_channel" });
  });

  it("refuses configurations that cannot work, naming the key", () => {
    expect(() => settings({ account_sid: "AC123" })).toThrow("providers.twilio.account_sid: expected AC followed by 32 letters or digits");
    expect(() => settings({ auth_token: undefined })).toThrow("providers.twilio.auth_token: required");
    expect(() => settings({ api_key_sid: API_KEY.sid })).toThrow("providers.twilio.api_key_sid: set with api_key_secret");
    expect(() => settings({ status_callback_url: undefined })).toThrow("providers.twilio.status_callback_url");
  });
});

describe("Twilio status callbacks as receipts", () => {
  const settings = { name: "twilio", type: "twilio", statusCallbackUrl: CALLBACK, authToken: new Secret(TOKEN) } as TwilioSettings;
  const webhook = twilioWebhook(settings);
  const signed = (params: Record<string, string>, url = CALLBACK, token = TOKEN) => {
    const form = new URLSearchParams(params);
    return { body: Buffer.from(form.toString()), headers: { "x-twilio-signature": twilioSignature(token, url, form) } };
  };

  it("accepts only callbacks signed with the auth token over our callback URL and their own parameters", () => {
    const good = signed({ MessageSid: "SM1", MessageStatus: "delivered" });
    expect(webhook.authenticate(good.body, good.headers)).toBe(true);
    expect(webhook.authenticate(Buffer.from(new URLSearchParams({ MessageSid: "SM1", MessageStatus: "failed" }).toString()), good.headers)).toBe(false);
    expect(webhook.authenticate(good.body, signed({ MessageSid: "SM1", MessageStatus: "delivered" }, `${CALLBACK}?x=1`).headers)).toBe(false);
    expect(webhook.authenticate(good.body, signed({ MessageSid: "SM1", MessageStatus: "delivered" }, CALLBACK, "other").headers)).toBe(false);
    expect(webhook.authenticate(good.body, {})).toBe(false);
  });

  it("maps message and call statuses, with Twilio's error code on failures", () => {
    const parse = (params: Record<string, string>) => webhook.parse(Buffer.from(new URLSearchParams(params).toString()))[0];
    expect(parse({ MessageSid: "SM1", MessageStatus: "delivered" })).toMatchObject({ provider: "twilio", providerMessageId: "SM1", status: "DELIVERED" });
    expect(parse({ MessageSid: "SM1", MessageStatus: "sent" })).toMatchObject({ status: "SUBMITTED" });
    expect(parse({ MessageSid: "SM2", MessageStatus: "undelivered", ErrorCode: "30003" })).toMatchObject({ status: "UNDELIVERED", errorCode: "twilio_30003" });
    expect(parse({ MessageSid: "SM3", MessageStatus: "failed", ErrorCode: "30008" })).toMatchObject({ status: "FAILED", errorCode: "twilio_30008" });
    expect(parse({ CallSid: "CA1", CallStatus: "completed" })).toMatchObject({ providerMessageId: "CA1", status: "DELIVERED" });
    expect(parse({ CallSid: "CA2", CallStatus: "no-answer" })).toMatchObject({ status: "UNDELIVERED", errorCode: "no-answer" });
    expect(() => parse({ MessageSid: "SM4", MessageStatus: "teleported" })).toThrow("known status");
    expect(() => parse({ Body: "hello" })).toThrow("known status");
  });
});
