import { createVerify, type KeyObject } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { json, listenOnLoopback, readBody, stopServer } from "./loopback-http.js";

/** What the token endpoint answers next; a real token by default. */
export type TokenAnswer = { readonly kind: "token"; readonly expiresIn: number } | { readonly kind: "status"; readonly status: number; readonly body: unknown };

/**
 * Google's OAuth 2 token endpoint on loopback for one service account: takes
 * the JWT bearer grant, checks the assertion's RS256 signature against the
 * account's public key and its claims (issuer, FCM scope, this endpoint as
 * audience, a lifetime of at most an hour), and issues access tokens
 * (`ya29.sa-1`, `ya29.sa-2`, …), telling `onIssued`.
 */
export class GoogleTokenPeer {
  /** Assertions taken (valid or not), in order. */
  readonly requests: Array<{ readonly valid: boolean; readonly claims?: Record<string, unknown> }> = [];
  /** Answers to give, in order, before the default. */
  readonly answers: TokenAnswer[] = [];
  private next = 1;

  private constructor(
    private readonly server: http.Server,
    private readonly publicKey: KeyObject,
    private readonly clientEmail: string,
    private readonly onIssued: (token: string) => void,
  ) {}

  static async start(publicKey: KeyObject, clientEmail: string, onIssued: (token: string) => void): Promise<GoogleTokenPeer> {
    const server = http.createServer();
    const peer = new GoogleTokenPeer(server, publicKey, clientEmail, onIssued);
    server.on("request", (req, res) => void peer.handle(req, res));
    await listenOnLoopback(server);
    return peer;
  }

  get tokenUri(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/token`;
  }

  async stop(): Promise<void> {
    await stopServer(this.server);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.method !== "POST" || req.url !== "/token" || req.headers["content-type"] !== "application/x-www-form-urlencoded") {
      return json(res, 400, { error: "invalid_request" });
    }
    const form = new URLSearchParams(body.toString("utf8"));
    const claims = form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" ? this.verified(form.get("assertion") ?? "") : undefined;
    this.requests.push({ valid: claims !== undefined, ...(claims ? { claims } : {}) });
    if (claims === undefined) return json(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
    const answer = this.answers.shift() ?? { kind: "token", expiresIn: 3_599 };
    if (answer.kind === "status") return json(res, answer.status, answer.body);
    const token = `ya29.sa-${this.next++}`;
    this.onIssued(token);
    json(res, 200, { access_token: token, expires_in: answer.expiresIn, token_type: "Bearer" });
  }

  /** The assertion's claims if its signature and claims are what Google requires; undefined otherwise. */
  private verified(assertion: string): Record<string, unknown> | undefined {
    const [header, payload, signature] = assertion.split(".");
    if (!header || !payload || !signature) return undefined;
    const signed = createVerify("RSA-SHA256").update(`${header}.${payload}`).verify(this.publicKey, Buffer.from(signature, "base64url"));
    if (!signed || JSON.parse(Buffer.from(header, "base64url").toString()).alg !== "RS256") return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const now = Math.floor(Date.now() / 1000);
    const ok =
      claims.iss === this.clientEmail &&
      claims.aud === this.tokenUri &&
      claims.scope === "https://www.googleapis.com/auth/firebase.messaging" &&
      typeof claims.iat === "number" &&
      typeof claims.exp === "number" &&
      claims.exp > claims.iat &&
      claims.exp - claims.iat <= 3_600 &&
      // Within days, not seconds, of now: the provider may run on a test's fake clock, hours ahead.
      Math.abs(claims.iat - now) < 3 * 86_400;
    return ok ? claims : undefined;
  }
}
