import { createSign } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { FcmAuth } from "../../../config/config-file.js";
import { ProviderError } from "../../provider.js";
import { withTimeLimit } from "../../../util/time-limit.js";
import { callJson } from "../http-json.js";

/** Where the FCM provider gets the OAuth 2 access token for a send. */
export interface AccessTokenSource {
  token(): Promise<string>;
  /** FCM refused `token` (revoked, expired early): the next `token()` must not return it. Whether a new one may help. */
  refused(token: string): boolean;
}

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const JWT_LIFETIME_S = 3_600;
/** Refresh this long before a token expires (at most half its life), so no send waits on the token endpoint. */
const REFRESH_AHEAD_MS = 5 * 60_000;

export function accessTokenSource(auth: FcmAuth, timeoutMs: number, now: () => number = Date.now): AccessTokenSource {
  return auth.kind === "token-file" ? tokenFile(auth.file) : new ServiceAccountTokens(auth, timeoutMs, now);
}

/** A token something else rotates in place: read on every send. */
function tokenFile(file: string): AccessTokenSource {
  return {
    async token() {
      try {
        return (await readFile(file, "utf8")).trim();
      } catch (error) {
        throw new ProviderError(`cannot read the FCM access token file (${(error as NodeJS.ErrnoException).code ?? "error"})`, true, "credential", false);
      }
    },
    refused: () => false,
  };
}

interface Minted {
  readonly token: string;
  readonly refreshAt: number;
  readonly expiresAt: number;
}

/**
 * Access tokens minted from a service account with the JWT bearer grant
 * (RFC 7523, as Google's token endpoint takes it): an RS256-signed assertion
 * of the account's email, the FCM scope and the endpoint as audience,
 * exchanged for a token. One token serves every send until shortly before it
 * expires; concurrent sends share one request for the next.
 */
export class ServiceAccountTokens implements AccessTokenSource {
  private minted: Minted | undefined;
  private minting: Promise<Minted> | undefined;

  constructor(
    private readonly account: Extract<FcmAuth, { kind: "service-account" }>,
    private readonly timeoutMs: number,
    private readonly now: () => number,
  ) {}

  async token(): Promise<string> {
    const minted = this.minted;
    if (minted !== undefined && this.now() < minted.refreshAt) return minted.token;
    try {
      return (await this.mint()).token;
    } catch (error) {
      // The endpoint is down but the token we hold still works: use it.
      if (minted !== undefined && this.now() < minted.expiresAt) return minted.token;
      throw error;
    }
  }

  refused(token: string): boolean {
    if (this.minted?.token === token) this.minted = undefined;
    return true;
  }

  private mint(): Promise<Minted> {
    this.minting ??= this.request().then(
      (minted) => {
        this.minted = minted;
        this.minting = undefined;
        return minted;
      },
      (error: unknown) => {
        this.minting = undefined;
        throw error;
      },
    );
    return this.minting;
  }

  private async request(): Promise<Minted> {
    const issuedAt = Math.floor(this.now() / 1000);
    const assertion = signedJwt(
      { alg: "RS256", typ: "JWT" },
      { iss: this.account.clientEmail, scope: SCOPE, aud: this.account.tokenUri, iat: issuedAt, exp: issuedAt + JWT_LIFETIME_S },
      this.account,
    );
    let answer: { access_token?: unknown; expires_in?: unknown };
    try {
      answer = (await withTimeLimit(this.timeoutMs, (signal) =>
        callJson({
          method: "POST",
          url: this.account.tokenUri,
          headers: {},
          form: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
          signal,
        }),
      )) as typeof answer;
    } catch (error) {
      const cause = error instanceof ProviderError ? error.message : String(error);
      // The send did not reach FCM: retryable, never ambiguous. A refused assertion is a configuration error.
      throw new ProviderError(`cannot get an FCM access token: ${cause}`, !(error instanceof ProviderError && error.code === "auth"), "credential", false);
    }
    const { access_token: token, expires_in: expiresIn } = answer;
    if (typeof token !== "string" || !/^[\x21-\x7e]{1,4096}$/.test(token) || typeof expiresIn !== "number" || !(expiresIn >= 60 && expiresIn <= 86_400)) {
      throw new ProviderError("the token endpoint's answer has no usable access_token and expires_in (60 s – 24 h)", true, "credential", false);
    }
    const now = this.now();
    const lifeMs = expiresIn * 1000;
    return { token, expiresAt: now + lifeMs, refreshAt: now + lifeMs - Math.min(REFRESH_AHEAD_MS, lifeMs / 2) };
  }
}

function signedJwt(header: object, claims: object, account: Extract<FcmAuth, { kind: "service-account" }>): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString("base64url");
  const unsigned = `${encode(header)}.${encode(claims)}`;
  const signature = createSign("RSA-SHA256").update(unsigned).sign(account.privateKey).toString("base64url");
  return `${unsigned}.${signature}`;
}
