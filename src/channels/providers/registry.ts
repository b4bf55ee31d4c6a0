import type { ProviderSettings } from "../../config/config-file.js";
import type { DevInbox } from "../../dev/dev-inbox.js";
import type { ReceiptPoller, WebhookReceiver } from "../../receipts/receipt-source.js";
import type { Provider } from "../provider.js";
import { HttpRouteProvider } from "./http-route/http-route-provider.js";
import { httpRoutePoller, httpRouteWebhook } from "./http-route/http-route-receipts.js";
import { FcmProvider } from "./fcm/fcm-provider.js";
import { SandboxProvider } from "./sandbox/sandbox-provider.js";
import { VoiceHttpProvider } from "./voice-http/voice-http-provider.js";
import { voiceHttpWebhook } from "./voice-http/voice-http-receipts.js";
import { SmtpProvider } from "./smtp/smtp-provider.js";
import type { Logger } from "../../telemetry/logger.js";
import { SmppProvider, type ReceiptSink } from "./smpp/smpp-provider.js";
import { TwilioProvider } from "./twilio/twilio-provider.js";
import { twilioWebhook } from "./twilio/twilio-receipts.js";
import { WhatsAppProvider } from "./whatsapp/whatsapp-provider.js";
import { whatsAppWebhook } from "./whatsapp/whatsapp-receipts.js";

/** What providers that keep a connection need: where receipts arriving on it are stored, and a log. */
export interface ProviderContext {
  readonly inbox: DevInbox;
  readonly receipts: ReceiptSink;
  readonly log: Logger;
}

/** The configured providers, by name, ready to submit. `close` releases their connections. */
export function createProviders(settings: readonly ProviderSettings[], context: ProviderContext): { providers: Map<string, Provider>; close: () => Promise<void> } {
  const providers = new Map<string, Provider>();
  const closers: Array<() => void | Promise<void>> = [];
  for (const s of settings) {
    switch (s.type) {
      case "sandbox":
        providers.set(s.name, new SandboxProvider(s.name, context.inbox));
        break;
      case "http-route":
        providers.set(s.name, new HttpRouteProvider(s));
        break;
      case "voice-http":
        providers.set(s.name, new VoiceHttpProvider(s));
        break;
      case "fcm":
        providers.set(s.name, new FcmProvider(s));
        break;
      case "twilio":
        providers.set(s.name, new TwilioProvider(s));
        break;
      case "whatsapp-cloud":
        providers.set(s.name, new WhatsAppProvider(s));
        break;
      case "smpp": {
        const smpp = new SmppProvider(s, context.receipts, context.log);
        closers.push(() => smpp.close());
        providers.set(s.name, smpp);
        break;
      }
      case "smtp": {
        const smtp = new SmtpProvider(s);
        closers.push(() => smtp.close());
        providers.set(s.name, smtp);
        break;
      }
    }
  }
  return { providers, close: async () => void (await Promise.all(closers.map((close) => close()))) };
}

/** Where receipts come from: webhooks by provider name, and pollers. */
export function createReceiptSources(settings: readonly ProviderSettings[]): {
  webhooks: Map<string, WebhookReceiver>;
  pollers: Map<string, ReceiptPoller>;
} {
  const webhooks = new Map<string, WebhookReceiver>();
  const pollers = new Map<string, ReceiptPoller>();
  for (const s of settings) {
    if (s.type === "voice-http") webhooks.set(s.name, voiceHttpWebhook(s));
    if (s.type === "twilio") webhooks.set(s.name, twilioWebhook(s));
    if (s.type === "whatsapp-cloud") webhooks.set(s.name, whatsAppWebhook(s));
    if (s.type !== "http-route") continue;
    const webhook = httpRouteWebhook(s);
    const poller = httpRoutePoller(s);
    if (webhook) webhooks.set(s.name, webhook);
    if (poller) pollers.set(s.name, poller);
  }
  return { webhooks, pollers };
}
