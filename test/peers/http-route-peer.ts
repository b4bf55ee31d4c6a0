import { EventEmitter, once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { signBody } from "../../src/receipts/signature.js";
import { json, listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

/** What the peer does with a send_sms request for one number. */
export type SendBehaviour =
  | { readonly kind: "accept" }
  /** Answer with this HTTP status and error; nothing is sent. */
  | { readonly kind: "fail"; readonly status: number; readonly error?: string }
  /** Take the message (it counts as sent) but answer only after `ms`. */
  | { readonly kind: "slow"; readonly ms: number }
  /** Take the message and never answer (the caller's timeout or crash ends it). */
  | { readonly kind: "hold" };

/** The receipt the peer produces for a message it took. */
export type ReceiptBehaviour =
  | { readonly status: "DELIVERED" | "UNDELIVERED" | "EXPIRED" | "REJECTED" | "FAILED"; readonly errorCode?: string; readonly afterMs?: number;
      /** Push it to the webhook before answering send_sms (the "early receipt"). */
      readonly beforeAnswer?: boolean; readonly push?: boolean }
  | { readonly status: "never" };

export interface PeerSend {
  readonly bxMessageId: string;
  readonly routeId: unknown;
  readonly callerId: unknown;
  readonly numbers: readonly string[];
  readonly message: string;
  readonly idempotencyKey?: string;
  readonly traceparent?: string;
}

export interface HttpRoutePeerOptions {
  readonly apiKey: string;
  readonly webhookSecret: string;
  /** Price per message, by route_id. */
  readonly prices?: Readonly<Record<string, number>>;
  readonly balance?: number;
  /** What it does for a number without a behaviour of its own (`onSend`); accepts at once by default. */
  readonly send?: SendBehaviour;
  /**
   * The receipt of each message taken for a number without a receipt behaviour of its own (`onReceipt`); DELIVERED at
   * once by default. A simulation scripts its network here: it sees every message as it is taken.
   */
  readonly receipt?: (send: PeerSend) => ReceiptBehaviour;
}

/**
 * A route-based SMS HTTP API on loopback (BridgeXAPI style), for tests:
 * send_sms, estimate and dlr polling, and signed receipts pushed to a webhook.
 * Behaviour is scripted per destination number; by default it accepts and
 * pushes a DELIVERED receipt at once. It honours `Idempotency-Key`: a repeated
 * key gets the first message id back and sends nothing.
 */
export class HttpRoutePeer {
  /** Messages taken, each once (what phones would receive). */
  readonly sends: PeerSend[] = [];
  /** Every send_sms request's first number, repeats included. */
  readonly requests: string[] = [];
  webhookUrl: string | undefined;
  /** Receipt posts the webhook answered, by HTTP status. */
  readonly webhookAnswers: number[] = [];
  private readonly sendBehaviour = new Map<string, SendBehaviour>();
  private readonly receiptBehaviour = new Map<string, ReceiptBehaviour>();
  private readonly byKey = new Map<string, string>();
  private readonly status = new Map<string, { status: string; errorCode?: string; at: string }>();
  private readonly events = new EventEmitter();
  private readonly held = new Set<http.ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private nextId = 1000;

  private constructor(
    private readonly server: http.Server,
    private readonly options: HttpRoutePeerOptions,
  ) {}

  static async start(options: HttpRoutePeerOptions): Promise<HttpRoutePeer> {
    const server = http.createServer();
    const peer = new HttpRoutePeer(server, options);
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  /**
   * A configuration file (OTP_CONFIG) with this peer as the only provider, `bridgex`, behind one Dutch OTP SMS
   * route, `sms-nl-otp`: its API key in a file beside it, receipts signed with its secret, idempotency keys on.
   */
  writeConfigFile(timeout: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), "otp-route-"));
    writeFileSync(path.join(dir, "api-key"), `${this.options.apiKey}\n`);
    const provider = `{ type: http-route, base_url: ${this.baseUrl}, api_key_file: api-key, webhook_secret: ${this.options.webhookSecret}, idempotency_key: true, timeout: ${timeout} }`;
    const file = path.join(dir, "otp.yaml");
    writeFileSync(
      file,
      [
        "providers:",
        `  bridgex: ${provider}`,
        "routes:",
        "  - { id: sms-nl-otp, channel: sms, provider: bridgex, provider_route: 3, traffic_class: otp, sender: ACME, countries: [NL] }",
        "",
      ].join("\n"),
    );
    return file;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  onSend(number: string, behaviour: SendBehaviour): void {
    this.sendBehaviour.set(number, behaviour);
  }

  onReceipt(number: string, behaviour: ReceiptBehaviour): void {
    this.receiptBehaviour.set(number, behaviour);
  }

  sendsTo(number: string): PeerSend[] {
    return this.sends.filter((s) => s.numbers.includes(number));
  }

  /** Resolves with the first message taken for `number` (already taken or still to come). */
  async nextSendTo(number: string, timeoutMs = 15_000): Promise<PeerSend> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.sendsTo(number)[0];
      if (found) return found;
      await once(this.events, "send", { signal });
    }
  }

  /** Posts a receipt to the webhook, signed with `secret` (the right one unless told otherwise). */
  async pushReceipt(bxMessageId: string, status: string, extra: { errorCode?: string; secret?: string } = {}): Promise<number> {
    const body = JSON.stringify({ bx_message_id: bxMessageId, status, error_code: extra.errorCode ?? null, timestamp: new Date().toISOString() });
    const response = await fetch(this.webhookUrl!, {
      method: "POST",
      headers: { "content-type": "application/json", "x-signature": signBody(extra.secret ?? this.options.webhookSecret, body) },
      body,
    });
    await response.arrayBuffer();
    this.webhookAnswers.push(response.status);
    return response.status;
  }

  async stop(): Promise<void> {
    this.timers.forEach(clearTimeout);
    this.held.forEach((res) => res.destroy());
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? "/", this.baseUrl);
    if (req.headers["x-api-key"] !== this.options.apiKey) return json(res, 401, { error: "invalid API key" });
    const body = raw.length ? (JSON.parse(raw.toString("utf8")) as Record<string, unknown>) : {};
    if (req.method === "POST" && url.pathname === "/api/v1/send_sms") return this.sendSms(req, res, body);
    if (req.method === "POST" && url.pathname === "/api/v1/estimate") return this.estimate(res, body);
    const dlr = /^\/api\/v1\/dlr\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && dlr) {
      const id = decodeURIComponent(dlr[1]!);
      const known = this.status.get(id);
      if (known === undefined) return json(res, 404, { error: "unknown bx_message_id" });
      return json(res, 200, { bx_message_id: id, status: known.status, error_code: known.errorCode ?? null, timestamp: known.at });
    }
    json(res, 404, { error: "no such endpoint" });
  }

  private async sendSms(req: http.IncomingMessage, res: http.ServerResponse, body: Record<string, unknown>): Promise<void> {
    const numbers = body.numbers;
    this.requests.push(Array.isArray(numbers) ? String(numbers[0]) : "");
    if (typeof body.message !== "string" || !Array.isArray(numbers) || numbers.length === 0 || body.route_id === undefined || !body.caller_id) {
      return json(res, 400, { error: "route_id, caller_id, numbers and message are required" });
    }
    const number = String(numbers[0]);
    const key = typeof req.headers["idempotency-key"] === "string" ? req.headers["idempotency-key"] : undefined;
    const repeated = key !== undefined ? this.byKey.get(key) : undefined;
    if (repeated !== undefined) return json(res, 200, answer(repeated, number));
    const behaviour = this.sendBehaviour.get(number) ?? this.options.send ?? { kind: "accept" };
    if (behaviour.kind === "fail") return json(res, behaviour.status, { error: behaviour.error ?? `status ${behaviour.status}` });

    const bxMessageId = `bx-${this.nextId++}`;
    if (key !== undefined) this.byKey.set(key, bxMessageId);
    this.status.set(bxMessageId, { status: "ENROUTE", at: new Date().toISOString() });
    const send: PeerSend = {
      bxMessageId,
      routeId: body.route_id,
      callerId: body.caller_id,
      numbers: numbers.map(String),
      message: body.message,
      ...(key !== undefined ? { idempotencyKey: key } : {}),
      ...(typeof req.headers.traceparent === "string" ? { traceparent: req.headers.traceparent } : {}),
    };
    this.sends.push(send);
    this.events.emit("send");

    const receipt = this.receiptBehaviour.get(number) ?? this.options.receipt?.(send) ?? { status: "DELIVERED" };
    if (receipt.status !== "never" && receipt.beforeAnswer) await this.report(bxMessageId, receipt);
    if (behaviour.kind === "hold") {
      this.held.add(res);
      return;
    }
    if (behaviour.kind === "slow") await this.delay(behaviour.ms);
    json(res, 200, answer(bxMessageId, number));
    if (receipt.status !== "never" && !receipt.beforeAnswer) this.later(receipt.afterMs ?? 0, () => this.report(bxMessageId, receipt));
  }

  private estimate(res: http.ServerResponse, body: Record<string, unknown>): void {
    const numbers = Array.isArray(body.numbers) ? body.numbers.length : 0;
    const cost = numbers * (this.options.prices?.[String(body.route_id)] ?? 0.05);
    const balance = this.options.balance ?? 100;
    json(res, 200, { estimated_cost: cost, currency: "EUR", balance, sufficient_balance: balance >= cost });
  }

  /** The network reports a final status for a message: visible to polls, and pushed unless `push: false`. */
  async report(bxMessageId: string, receipt: Exclude<ReceiptBehaviour, { status: "never" }>): Promise<void> {
    this.status.set(bxMessageId, { status: receipt.status, ...(receipt.errorCode ? { errorCode: receipt.errorCode } : {}), at: new Date().toISOString() });
    if (receipt.push === false || this.webhookUrl === undefined) return;
    await this.pushReceipt(bxMessageId, receipt.status, receipt.errorCode ? { errorCode: receipt.errorCode } : {}).catch(() => {
      this.webhookAnswers.push(0);
    });
  }

  private later(ms: number, run: () => Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void run();
    }, ms);
    this.timers.add(timer);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.later(ms, async () => resolve()));
  }
}

function answer(bxMessageId: string, number: string) {
  return { status: "success", messages: [{ bx_message_id: bxMessageId, msisdn: number, status: "ENROUTE" }], count: 1 };
}
