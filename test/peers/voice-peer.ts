import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { signBody } from "../../src/receipts/signature.js";
import { json, listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

export interface PeerCall {
  readonly callId: string;
  readonly to: string;
  readonly from: string;
  readonly text: string;
  /** The text-to-speech language asked for. */
  readonly language?: string;
  readonly statusCallback?: string;
  readonly clientReference?: string;
}

/** How a call to one number ends, and when its status is posted. */
export type CallOutcome = { readonly status: "completed" | "no-answer" | "busy" | "failed"; readonly afterMs?: number } | { readonly status: "silent" };

/**
 * An HTTP voice-call API on loopback: takes calls (text to speech), and posts
 * each call's final status, signed, to its status callback. By default calls
 * are answered ("completed") at once.
 */
export class VoicePeer {
  readonly calls: PeerCall[] = [];
  private readonly outcomes = new Map<string, CallOutcome>();
  private readonly events = new EventEmitter();
  private readonly timers = new Set<NodeJS.Timeout>();
  private nextId = 1;

  private constructor(
    private readonly server: http.Server,
    private readonly apiKey: string,
    private readonly webhookSecret: string,
  ) {}

  static async start(apiKey: string, webhookSecret: string): Promise<VoicePeer> {
    const server = http.createServer();
    const peer = new VoicePeer(server, apiKey, webhookSecret);
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  onCall(to: string, outcome: CallOutcome): void {
    this.outcomes.set(to, outcome);
  }

  /** Calls `listener` with each call placed from now on. */
  onEachCall(listener: (call: PeerCall) => void): void {
    this.events.on("call", listener);
  }

  async nextCallTo(to: string, timeoutMs = 60_000): Promise<PeerCall> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.calls.find((c) => c.to === to);
      if (found) return found;
      await once(this.events, "call", { signal });
    }
  }

  async stop(): Promise<void> {
    this.timers.forEach(clearTimeout);
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return json(res, 401, { error: "unauthorized" });
    if (req.method !== "POST" || req.url !== "/v1/calls") return json(res, 404, { error: "no such endpoint" });
    const body = JSON.parse(raw.toString("utf8")) as { to?: string; from?: string; tts?: { text?: string; language?: string }; status_callback?: string; client_reference?: string };
    if (!body.to || !body.from || !body.tts?.text) return json(res, 400, { error: "to, from and tts.text are required" });
    const call: PeerCall = {
      callId: `CA${String(this.nextId++).padStart(6, "0")}`,
      to: body.to,
      from: body.from,
      text: body.tts.text,
      ...(body.tts.language ? { language: body.tts.language } : {}),
      ...(body.status_callback ? { statusCallback: body.status_callback } : {}),
      ...(body.client_reference ? { clientReference: body.client_reference } : {}),
    };
    this.calls.push(call);
    this.events.emit("call", call);
    json(res, 201, { call_id: call.callId, status: "queued" });
    const outcome = this.outcomes.get(call.to) ?? { status: "completed" };
    if (outcome.status === "silent" || !call.statusCallback) return;
    const status = outcome.status;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const payload = JSON.stringify({ call_id: call.callId, status, timestamp: new Date().toISOString() });
      void fetch(call.statusCallback!, { method: "POST", headers: { "content-type": "application/json", "x-signature": signBody(this.webhookSecret, payload) }, body: payload }).catch(() => {});
    }, outcome.afterMs ?? 0);
    this.timers.add(timer);
  }
}
