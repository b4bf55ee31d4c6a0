import { randomBytes } from "node:crypto";
import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { signBody } from "../../src/receipts/signature.js";
import { json, listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

/** A template message the peer took: who it was for, and what it carried. */
export interface WhatsAppMessage {
  readonly id: string;
  readonly phoneNumberId: string;
  readonly to: string;
  readonly template: string;
  readonly language: string;
  /** The code, as the body parameter (the button's must be the same). */
  readonly code: string;
  readonly traceparent?: string;
}

/** One status the peer posts to the webhook: after `delayMs` from the answer, or before answering the send. */
export interface StatusScript {
  readonly status: "sent" | "delivered" | "read" | "failed";
  readonly delayMs?: number;
  readonly beforeAnswer?: boolean;
  readonly errorCode?: number;
}

/** What the peer does for one recipient: take it (and post these statuses), refuse it with a Graph error, or hold it unanswered. */
export type WhatsAppBehaviour =
  | { readonly kind: "accept"; readonly statuses: readonly StatusScript[] }
  | { readonly kind: "error"; readonly status: number; readonly code: number; readonly message: string; readonly times?: number }
  | { readonly kind: "hold" }
  /** Answer 200 without a message id (a compatible provider's broken answer). */
  | { readonly kind: "no-id" };

/**
 * Meta's WhatsApp Cloud API on loopback, as far as authentication templates go: `POST /{phone-number-id}/messages`
 * with a bearer token, the template checked against the approved ones (name, language, the code as body and button
 * parameter, at most 15 characters), Graph-style errors, and message statuses posted to `webhookUrl` signed with
 * `X-Hub-Signature-256` as Meta signs them (HMAC-SHA-256 of the body with the app secret).
 */
export class WhatsAppPeer {
  readonly messages: WhatsAppMessage[] = [];
  /** Every send request's recipient, answered or not (a crash test counts these). */
  readonly requests: string[] = [];
  webhookUrl: string | undefined;
  /** Each status posted to the webhook and the HTTP status it was answered with (0: unreachable). */
  readonly statusesPosted: Array<{ readonly messageId: string; readonly status: string; readonly answer: number }> = [];
  private readonly behaviour = new Map<string, WhatsAppBehaviour>();
  private readonly errorsServed = new Map<string, number>();
  private readonly events = new EventEmitter();
  private readonly held: http.ServerResponse[] = [];

  private constructor(
    private readonly server: http.Server,
    private readonly accessToken: string,
    private readonly appSecret: string,
    /** Approved templates: name → languages. */
    private readonly templates: ReadonlyMap<string, readonly string[]>,
  ) {}

  static async start(options: { accessToken: string; appSecret: string; templates: Record<string, readonly string[]> }): Promise<WhatsAppPeer> {
    const server = http.createServer();
    const peer = new WhatsAppPeer(server, options.accessToken, options.appSecret, new Map(Object.entries(options.templates)));
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v21.0`;
  }

  on(to: string, behaviour: WhatsAppBehaviour): void {
    this.behaviour.set(to, behaviour);
    this.errorsServed.delete(to);
  }

  /** The first message taken for `to`, already or still to come. */
  async nextMessageTo(to: string, timeoutMs = 15_000): Promise<WhatsAppMessage> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.messages.find((m) => m.to === to);
      if (found) return found;
      await once(this.events, "message", { signal });
    }
  }

  /** Resolves once a send request for `to` has arrived (answered or not). */
  async nextRequestTo(to: string, timeoutMs = 15_000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    while (!this.requests.includes(to)) await once(this.events, "request", { signal });
  }

  /** Posts a status as Meta does; the webhook's HTTP status (0 when unreachable). */
  async postStatus(messageId: string, to: string, script: StatusScript, appSecret = this.appSecret): Promise<number> {
    const status = {
      id: messageId,
      status: script.status,
      timestamp: String(Math.floor(Date.now() / 1000)),
      recipient_id: to.replace("+", ""),
      ...(script.status === "failed" ? { errors: [{ code: script.errorCode ?? 131026, title: "Message undeliverable", message: "Message undeliverable" }] } : {}),
    };
    const answer = await this.postWebhook({ statuses: [status] }, appSecret);
    this.statusesPosted.push({ messageId, status: script.status, answer });
    return answer;
  }

  /** Posts a webhook change `value` (statuses, or an incoming message) in Meta's envelope, signed. */
  async postWebhook(value: Record<string, unknown>, appSecret = this.appSecret): Promise<number> {
    if (this.webhookUrl === undefined) return 0;
    const body = JSON.stringify({
      object: "whatsapp_business_account",
      entry: [{ id: "102290129340398", changes: [{ field: "messages", value: { messaging_product: "whatsapp", metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" }, ...value } }] }],
    });
    const response = await fetch(this.webhookUrl, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signBody(appSecret, body) }, body }).catch(() => undefined);
    await response?.arrayBuffer();
    return response?.status ?? 0;
  }

  /** Meta's subscription handshake against the webhook: its HTTP status and body. */
  async subscribe(verifyToken: string, challenge = "1158201444"): Promise<{ status: number; body: string }> {
    const query = new URLSearchParams({ "hub.mode": "subscribe", "hub.verify_token": verifyToken, "hub.challenge": challenge });
    const response = await fetch(`${this.webhookUrl}?${query}`);
    return { status: response.status, body: await response.text() };
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.headers.authorization !== `Bearer ${this.accessToken}`) {
      return graphError(res, 401, 190, "Error validating access token: Session has expired.");
    }
    const match = /^\/v21\.0\/(\d+)\/messages$/.exec(req.url ?? "");
    if (req.method !== "POST" || match === null) return graphError(res, 400, 100, "Unsupported post request.");
    const problem = this.checkTemplate(body);
    if (typeof problem === "string") return graphError(res, 400, 132000, problem);
    const { to, template, language, code } = problem;
    this.requests.push(to);
    this.events.emit("request");
    const behaviour = this.behaviour.get(to) ?? { kind: "accept", statuses: [{ status: "sent" }, { status: "delivered" }] };
    if (behaviour.kind === "hold") {
      this.held.push(res);
      return;
    }
    if (behaviour.kind === "no-id") return json(res, 200, { messaging_product: "whatsapp", messages: [] });
    if (behaviour.kind === "error") {
      const served = this.errorsServed.get(to) ?? 0;
      if (behaviour.times === undefined || served < behaviour.times) {
        this.errorsServed.set(to, served + 1);
        return graphError(res, behaviour.status, behaviour.code, behaviour.message);
      }
    }
    const id = `wamid.${randomBytes(24).toString("base64url")}`;
    const traceparent = typeof req.headers.traceparent === "string" ? req.headers.traceparent : undefined;
    this.messages.push({ id, phoneNumberId: match[1]!, to, template, language, code, ...(traceparent ? { traceparent } : {}) });
    this.events.emit("message");
    const statuses = behaviour.kind === "accept" ? behaviour.statuses : [{ status: "sent" as const }, { status: "delivered" as const }];
    for (const script of statuses.filter((s) => s.beforeAnswer)) await this.postStatus(id, to, script);
    json(res, 200, { messaging_product: "whatsapp", contacts: [{ input: to, wa_id: to.replace("+", "") }], messages: [{ id }] });
    for (const script of statuses.filter((s) => !s.beforeAnswer)) {
      if (script.delayMs) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
      await this.postStatus(id, to, script);
    }
  }

  /** The authentication template's send body, checked as the Cloud API checks it; a string says what is wrong. */
  private checkTemplate(raw: Buffer): { to: string; template: string; language: string; code: string } | string {
    let body: { messaging_product?: unknown; to?: unknown; type?: unknown; template?: { name?: unknown; language?: { code?: unknown }; components?: unknown } };
    try {
      body = JSON.parse(raw.toString("utf8")) as typeof body;
    } catch {
      return "(#100) The request body is not JSON";
    }
    const { template } = body;
    if (body.messaging_product !== "whatsapp" || body.type !== "template" || typeof body.to !== "string" || template === undefined) {
      return "(#100) Invalid parameter";
    }
    const name = String(template.name);
    const language = String(template.language?.code);
    if (!this.templates.get(name)?.includes(language)) return `(#132001) Template name does not exist in the translation: ${name} (${language})`;
    const components = (Array.isArray(template.components) ? template.components : []) as Array<{ type?: string; sub_type?: string; index?: string; parameters?: Array<{ type?: string; text?: string }> }>;
    const bodyCode = components.find((c) => c.type === "body")?.parameters?.[0]?.text;
    const button = components.find((c) => c.type === "button");
    const buttonCode = button?.sub_type === "url" && button.index === "0" ? button.parameters?.[0]?.text : undefined;
    if (typeof bodyCode !== "string" || bodyCode !== buttonCode || bodyCode.length > 15) {
      return "(#132000) Number of parameters does not match the expected number of params: the code goes in the body and the button, at most 15 characters";
    }
    return { to: body.to, template: name, language, code: bodyCode };
  }
}

function graphError(res: http.ServerResponse, status: number, code: number, message: string): void {
  json(res, status, { error: { message, type: "OAuthException", code, error_data: { messaging_product: "whatsapp", details: message }, fbtrace_id: "AZ9b0QxQ6XDe" } });
}
