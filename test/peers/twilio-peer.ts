import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { twilioSignature } from "../../src/channels/providers/twilio/twilio-signature.js";
import { json, listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

/** A message or call Twilio took: its form fields as posted. */
export interface TwilioRequest {
  readonly resource: "Messages" | "Calls";
  readonly sid: string;
  readonly user: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** What the peer does for one `To`: take it and call back with these statuses, or answer with a Twilio error. */
export type TwilioBehaviour =
  /** Take it and post these status callbacks (all of them before the API's answer, with `beforeAnswer`). */
  | { readonly kind: "accept"; readonly callbacks: ReadonlyArray<Readonly<Record<string, string>>>; readonly beforeAnswer?: boolean }
  | { readonly kind: "error"; readonly status: number; readonly code: number; readonly message: string }
  /** Take it and never answer. */
  | { readonly kind: "hold" };

/**
 * Twilio's Messages and Calls APIs on loopback for one account: basic auth
 * with the account SID and auth token or an API key, form-encoded requests,
 * JSON answers (`sid`), Twilio-style errors, and status callbacks posted to
 * each request's `StatusCallback`, signed with `X-Twilio-Signature`.
 */
export class TwilioPeer {
  readonly requests: TwilioRequest[] = [];
  private readonly behaviour = new Map<string, TwilioBehaviour>();
  private readonly events = new EventEmitter();
  private readonly held: http.ServerResponse[] = [];
  private next = 1;

  private constructor(
    private readonly server: http.Server,
    readonly accountSid: string,
    private readonly authToken: string,
    private readonly apiKey?: { sid: string; secret: string },
  ) {}

  static async start(accountSid: string, authToken: string, apiKey?: { sid: string; secret: string }): Promise<TwilioPeer> {
    const server = http.createServer();
    const peer = new TwilioPeer(server, accountSid, authToken, apiKey);
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(to: string, behaviour: TwilioBehaviour): void {
    this.behaviour.set(to, behaviour);
  }

  /** The first request (of `resource`, if given) to `to`, taken already or still to come. */
  async nextRequestTo(to: string, timeoutMs = 15_000, resource?: TwilioRequest["resource"]): Promise<TwilioRequest> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.requests.find((r) => r.fields.To === to && (resource === undefined || r.resource === resource));
      if (found) return found;
      await once(this.events, "request", { signal });
    }
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const [user, password] = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString().split(":");
    const known = (user === this.accountSid && password === this.authToken) || (this.apiKey !== undefined && user === this.apiKey.sid && password === this.apiKey.secret);
    if (!known) return json(res, 401, { code: 20003, message: "Authenticate", status: 401 });
    const match = new RegExp(`^/2010-04-01/Accounts/${this.accountSid}/(Messages|Calls)\\.json$`).exec(req.url ?? "");
    if (req.method !== "POST" || match === null) return json(res, 404, { code: 20404, message: "The requested resource was not found", status: 404 });
    const fields = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
    const resource = match[1] as TwilioRequest["resource"];
    const behaviour = this.behaviour.get(fields.To ?? "") ?? { kind: "accept", callbacks: [{ [resource === "Messages" ? "MessageStatus" : "CallStatus"]: resource === "Messages" ? "delivered" : "completed" }] };
    if (behaviour.kind === "error") return json(res, behaviour.status, { code: behaviour.code, message: behaviour.message, more_info: `https://www.twilio.com/docs/errors/${behaviour.code}`, status: behaviour.status });
    const sid = `${resource === "Messages" ? "SM" : "CA"}${String(this.next++).padStart(32, "0")}`;
    this.requests.push({ resource, sid, user: user!, fields });
    this.events.emit("request");
    if (behaviour.kind === "hold") return void this.held.push(res);
    const callBackAll = async () => {
      for (const callback of behaviour.callbacks) await this.callBack(fields.StatusCallback, { [resource === "Messages" ? "MessageSid" : "CallSid"]: sid, AccountSid: this.accountSid, To: fields.To ?? "", ...callback });
    };
    if (behaviour.beforeAnswer) await callBackAll();
    json(res, 201, { sid, account_sid: this.accountSid, status: "queued", to: fields.To });
    if (!behaviour.beforeAnswer) await callBackAll();
  }

  /** Posts a status callback as Twilio does: form-encoded, signed over the URL and the sorted parameters. */
  async callBack(url: string | undefined, params: Record<string, string>, authToken = this.authToken): Promise<number> {
    if (url === undefined) return 0;
    const form = new URLSearchParams(params);
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilioSignature(authToken, url, form) },
      body: form.toString(),
    }).catch(() => undefined);
    await response?.arrayBuffer();
    return response?.status ?? 0;
  }
}
