import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

export interface PeerPush {
  readonly name: string;
  readonly token: string;
  readonly title: string;
  readonly body: string;
  readonly data: Readonly<Record<string, string>>;
  readonly android?: { priority?: string; ttl?: string };
}

/** An FCM HTTP v1 `messages:send` endpoint on loopback, for one project and the access tokens it was told of. */
export class FcmPeer {
  readonly messages: PeerPush[] = [];
  /** Device tokens FCM no longer knows (404 UNREGISTERED). */
  readonly unregistered = new Set<string>();
  /** Answer 503 UNAVAILABLE this many times before accepting. */
  unavailableTimes = 0;
  private readonly events = new EventEmitter();
  private readonly accessTokens = new Set<string>();
  private next = 1;

  private constructor(
    private readonly server: http.Server,
    private readonly projectId: string,
    accessToken: string,
  ) {
    this.accessTokens.add(accessToken);
  }

  static async start(projectId: string, accessToken: string): Promise<FcmPeer> {
    const server = http.createServer();
    const peer = new FcmPeer(server, projectId, accessToken);
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Takes `token` from now on (one a token endpoint issued). */
  accept(token: string): void {
    this.accessTokens.add(token);
  }

  /** Refuses `token` from now on, as for a revoked or expired one. */
  revoke(token: string): void {
    this.accessTokens.delete(token);
  }

  async nextPushTo(token: string, timeoutMs = 60_000): Promise<PeerPush> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.messages.find((m) => m.token === token);
      if (found) return found;
      await once(this.events, "push", { signal });
    }
  }

  async stop(): Promise<void> {
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const presented = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (presented === undefined || !this.accessTokens.has(presented)) return error(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    if (req.method !== "POST" || req.url !== `/v1/projects/${this.projectId}/messages:send`) return error(res, 404, "NOT_FOUND", "no such endpoint");
    const { message } = JSON.parse(body.toString("utf8")) as {
      message?: { token?: string; notification?: { title?: string; body?: string }; data?: Record<string, string>; android?: { priority?: string; ttl?: string } };
    };
    if (!message?.token) return error(res, 400, "INVALID_ARGUMENT", "message.token is required");
    if (this.unavailableTimes > 0) {
      this.unavailableTimes--;
      return error(res, 503, "UNAVAILABLE", "The service is currently unavailable.");
    }
    if (this.unregistered.has(message.token)) return error(res, 404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
    const name = `projects/${this.projectId}/messages/0:${this.next++}`;
    this.messages.push({
      name,
      token: message.token,
      title: message.notification?.title ?? "",
      body: message.notification?.body ?? "",
      data: message.data ?? {},
      ...(message.android ? { android: message.android } : {}),
    });
    this.events.emit("push");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ name }));
  }
}

function error(res: http.ServerResponse, code: number, status: string, message: string, fcmError?: string): void {
  res.writeHead(code, { "content-type": "application/json" });
  const details = fcmError ? [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode: fcmError }] : [];
  res.end(JSON.stringify({ error: { code, message, status, details } }));
}
