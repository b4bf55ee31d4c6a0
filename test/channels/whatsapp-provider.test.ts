import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { templateLanguage, WhatsAppProvider, type WhatsAppSettings } from "../../src/channels/providers/whatsapp/whatsapp-provider.js";
import { whatsAppWebhook } from "../../src/channels/providers/whatsapp/whatsapp-receipts.js";
import { parseConfigFile } from "../../src/config/config-file.js";
import { signBody } from "../../src/receipts/signature.js";
import { providerFailure } from "../harness/provider-failure.js";
import { WhatsAppPeer } from "../peers/whatsapp-peer.js";

const TOKEN = "EAAJB-system-user-token";
const APP_SECRET = "meta-app-secret";
const VERIFY_TOKEN = "our-verify-token";
const PHONE_NUMBER_ID = "106540352242922";

const config = (provider: Record<string, unknown>, route: Record<string, unknown> = {}) =>
  parseConfigFile(
    {
      providers: { wa: { type: "whatsapp-cloud", access_token: TOKEN, app_secret: APP_SECRET, verify_token: VERIFY_TOKEN, template: { name: "verification_code", languages: ["en_US", "nl", "pt_BR", "ar"] }, ...provider } },
      routes: [{ id: "wa-otp", channel: "whatsapp", provider: "wa", traffic_class: "otp", sender: PHONE_NUMBER_ID, ...route }],
    },
    "/",
  );

describe("WhatsApp authentication templates through a Cloud API on loopback", () => {
  let peer: WhatsAppPeer;
  beforeAll(async () => {
    peer = await WhatsAppPeer.start({ accessToken: TOKEN, appSecret: APP_SECRET, templates: { verification_code: ["en_US", "nl", "pt_BR", "ar"] } });
  });
  afterAll(async () => {
    await peer?.stop();
  });

  const settings = (extra: Record<string, unknown> = {}) => config({ base_url: peer.baseUrl, timeout: "2s", ...extra }).routing.providers[0] as WhatsAppSettings;
  const message = (to: string, locale?: string): OutboundMessage => ({
    attemptId: `att-${to}`,
    verificationId: "vrf-w",
    channel: "whatsapp",
    providerRoute: "wa-otp",
    to,
    sender: PHONE_NUMBER_ID,
    text: "482139",
    ...(locale ? { locale } : {}),
  });
  const submit = (provider: WhatsAppProvider, m: OutboundMessage) => provider.submit(m, AbortSignal.timeout(2_000));

  it("sends the approved template from the route's phone number id, the code in the body and the copy-code button", async () => {
    const result = await submit(new WhatsAppProvider(settings()), { ...message("+31612350001"), traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
    const sent = await peer.nextMessageTo("+31612350001");
    expect(result).toEqual({ providerMessageId: sent.id, delivered: false });
    expect(sent).toMatchObject({ phoneNumberId: PHONE_NUMBER_ID, template: "verification_code", language: "en_US", code: "482139" });
    expect(sent.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  });

  it("picks the template language closest to the request's locale, else the first approved one", async () => {
    const provider = new WhatsAppProvider(settings());
    for (const [to, locale, language] of [
      ["+31612350011", "nl-BE", "nl"],
      ["+31612350012", "pt-BR", "pt_BR"],
      ["+31612350013", "ar-EG", "ar"],
      ["+31612350014", "fr-FR", "en_US"],
      ["+31612350015", undefined, "en_US"],
    ] as const) {
      await submit(provider, message(to, locale));
      expect((await peer.nextMessageTo(to)).language).toBe(language);
    }
    expect(templateLanguage("de-1996-1996", ["en_US", "de"])).toBe("en_US");
  });

  it("reads Graph error codes: not on WhatsApp and template problems are permanent, throughput limits and Meta's trouble are retried", async () => {
    const provider = new WhatsAppProvider(settings());
    peer.on("+31612350021", { kind: "error", status: 400, code: 131026, message: "Message undeliverable" });
    peer.on("+31612350022", { kind: "error", status: 400, code: 131056, message: "(Business Account, Consumer Account) pair rate limit hit" });
    peer.on("+31612350023", { kind: "error", status: 400, code: 130429, message: "Rate limit hit" });
    peer.on("+31612350024", { kind: "error", status: 500, code: 131000, message: "Something went wrong" });
    peer.on("+31612350025", { kind: "error", status: 403, code: 200, message: "Permissions error" });
    expect(await providerFailure(submit(provider, message("+31612350021")))).toMatchObject({ retryable: false, code: "whatsapp_131026" });
    expect(await providerFailure(submit(provider, message("+31612350022")))).toMatchObject({ retryable: false, code: "whatsapp_131056" });
    expect(await providerFailure(submit(provider, message("+31612350023")))).toMatchObject({ retryable: true, code: "whatsapp_130429", ambiguous: false });
    expect(await providerFailure(submit(provider, message("+31612350024")))).toMatchObject({ retryable: true, code: "whatsapp_131000" });
    expect(await providerFailure(submit(provider, message("+31612350025")))).toMatchObject({ retryable: false, code: "auth" });
    const expired = await providerFailure(submit(new WhatsAppProvider(settings({ access_token: "expired" })), message("+31612350026")));
    expect(expired).toMatchObject({ retryable: false, code: "auth" });
    expect(expired.message).toContain("WhatsApp error 190");
    const unapproved = await providerFailure(submit(new WhatsAppProvider(settings({ template: { name: "verification_code", languages: ["de"] } })), message("+31612350027")));
    expect(unapproved).toMatchObject({ retryable: false, code: "whatsapp_132000" });
    expect(await providerFailure(submit(provider, { ...message("+31612350028"), channel: "sms" }))).toMatchObject({ retryable: false, code: "unsupported_channel" });
    // Refused before any request: nothing reached the provider.
    expect(peer.requests).not.toContain("+31612350028");
  });

  it("treats an answer without a message id as possibly sent", async () => {
    peer.on("+31612350031", { kind: "no-id" });
    const failure = await providerFailure(submit(new WhatsAppProvider(settings()), message("+31612350031")));
    expect(failure).toMatchObject({ retryable: true, code: "bad_response", ambiguous: true });
  });

  it("refuses configurations that cannot work, naming the key", () => {
    expect(() => config({ access_token: undefined })).toThrow("providers.wa.access_token: required");
    expect(() => config({ app_secret: undefined })).toThrow("providers.wa.app_secret: required: it signs the status webhooks");
    expect(() => config({ verify_token: undefined })).toThrow("providers.wa.verify_token: required");
    expect(() => config({ template: undefined })).toThrow("providers.wa.template: expected a mapping");
    expect(() => config({ template: { name: "verification_code", languages: ["en-US"] } })).toThrow("providers.wa.template.languages");
    expect(() => config({ template: { name: "verification_code", languages: [] } })).toThrow("providers.wa.template.languages");
    expect(() => config({}, { sender: "+15550783881" })).toThrow("routes[0].sender: a whatsapp-cloud route sends from a WhatsApp Business phone number id");
    expect(() => config({}, { channel: "sms" })).toThrow('routes[0].channel: provider "wa" (whatsapp-cloud) sends whatsapp, not sms');
    expect((config({}).routing.providers[0] as WhatsAppSettings).baseUrl).toBe("https://graph.facebook.com/v21.0");
  });
});

describe("WhatsApp status webhooks as receipts", () => {
  const webhook = whatsAppWebhook(config({}).routing.providers[0] as WhatsAppSettings);
  const envelope = (value: Record<string, unknown>, object = "whatsapp_business_account") =>
    Buffer.from(JSON.stringify({ object, entry: [{ id: "102290129340398", changes: [{ field: "messages", value: { messaging_product: "whatsapp", ...value } }] }] }));
  const status = (id: string, word: string, extra: Record<string, unknown> = {}) => ({ id, status: word, timestamp: "1764763200", recipient_id: "31612350001", ...extra });

  it("accepts only bodies signed with the app secret (X-Hub-Signature-256)", () => {
    const body = envelope({ statuses: [status("wamid.A", "delivered")] });
    expect(webhook.authenticate(body, { "x-hub-signature-256": signBody(APP_SECRET, body) })).toBe(true);
    expect(webhook.authenticate(body, { "x-hub-signature-256": signBody("another-secret", body) })).toBe(false);
    expect(webhook.authenticate(envelope({ statuses: [status("wamid.A", "failed")] }), { "x-hub-signature-256": signBody(APP_SECRET, body) })).toBe(false);
    expect(webhook.authenticate(body, {})).toBe(false);
  });

  it("answers the subscription handshake only to our verify token, echoing a plain challenge", () => {
    const query = (token: string, challenge = "1158201444", mode = "subscribe") => new URLSearchParams({ "hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge });
    expect(webhook.handshake!(query(VERIFY_TOKEN))).toBe("1158201444");
    expect(webhook.handshake!(query("guess"))).toBeUndefined();
    expect(webhook.handshake!(query(VERIFY_TOKEN, "1158201444", "unsubscribe"))).toBeUndefined();
    expect(webhook.handshake!(query(VERIFY_TOKEN, "<script>alert(1)</script>"))).toBeUndefined();
    expect(webhook.handshake!(new URLSearchParams())).toBeUndefined();
  });

  it("maps sent, delivered, read and failed; read counts as delivered; the failure keeps WhatsApp's code", () => {
    const receipts = webhook.parse(
      envelope({
        statuses: [
          status("wamid.A", "sent"),
          status("wamid.A", "delivered"),
          status("wamid.B", "read"),
          status("wamid.C", "failed", { errors: [{ code: 131026, title: "Message undeliverable" }] }),
          status("wamid.D", "deleted"),
          { status: "delivered" },
        ],
      }),
    );
    expect(receipts).toEqual([
      { provider: "wa", providerMessageId: "wamid.A", status: "SUBMITTED", occurredAt: new Date(1_764_763_200_000) },
      { provider: "wa", providerMessageId: "wamid.A", status: "DELIVERED", occurredAt: new Date(1_764_763_200_000) },
      { provider: "wa", providerMessageId: "wamid.B", status: "DELIVERED", occurredAt: new Date(1_764_763_200_000) },
      { provider: "wa", providerMessageId: "wamid.C", status: "FAILED", errorCode: "whatsapp_131026", errorReason: "Message undeliverable", occurredAt: new Date(1_764_763_200_000) },
    ]);
  });

  it("acknowledges what the shared webhook carries besides statuses, and refuses what is not a WhatsApp webhook", () => {
    expect(webhook.parse(envelope({ contacts: [{ wa_id: "31612350001" }], messages: [{ from: "31612350001", id: "wamid.in", type: "text", text: { body: "hi" } }] }))).toEqual([]);
    expect(() => webhook.parse(envelope({ statuses: [] }, "page"))).toThrow("whatsapp_business_account");
    expect(() => webhook.parse(Buffer.from("not json"))).toThrow();
  });

  it("takes the time a status happened from Meta, but never one in the future", () => {
    const future = String(Math.floor(Date.now() / 1000) + 3_600);
    const [receipt] = webhook.parse(envelope({ statuses: [status("wamid.E", "delivered", { timestamp: future })] }));
    expect(receipt!.occurredAt.getTime()).toBeLessThanOrEqual(Date.now());
  });
});
