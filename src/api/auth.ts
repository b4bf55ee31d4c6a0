import { createHash, timingSafeEqual } from "node:crypto";
import type { Channel } from "../domain/channel.js";
import type { TextOverrides } from "../domain/messages/catalogue.js";
import type { DailySpendCap } from "../domain/spend-cap.js";
import { UnauthenticatedError } from "../domain/errors.js";
import type { Caller } from "../service/deps.js";

/** A calling service as configured: its token is stored only as a SHA-256 hex digest. */
export interface CallerConfig {
  readonly id: string;
  readonly tokenSha256: string;
  readonly channels?: readonly Channel[];
  readonly countries?: readonly string[];
  readonly routes?: readonly string[];
  /** Senders the caller may name in overrides, besides each route's own. */
  readonly senders?: readonly string[];
  /** Opening balance of a metered caller; callers without one are not metered. */
  readonly credit?: { readonly currency: string; readonly micros: number };
  /** What it may spend per destination country per day; no cap when undefined. */
  readonly dailySpendCap?: DailySpendCap;
  /** Its own message texts, by locale, over the configuration's and the shipped ones. */
  readonly messages?: TextOverrides;
}

/** Identifies the caller of an RPC from its request headers. */
export interface Authenticator {
  authenticate(headers: Headers): Caller;
}

/** `dev` only: every call runs as one local caller. */
export function noAuthentication(callerId = "dev"): Authenticator {
  return { authenticate: () => ({ id: callerId }) };
}

/**
 * Bearer tokens, one per calling service. The presented token is hashed and
 * compared with every configured digest in constant time, so neither timing
 * nor an early exit tells which callers exist.
 */
export function bearerTokenAuthentication(callers: readonly CallerConfig[]): Authenticator {
  const digests = callers.map((c) => ({ caller: c, digest: Buffer.from(c.tokenSha256, "hex") }));
  return {
    authenticate(headers) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "");
      if (match === null) throw new UnauthenticatedError("missing bearer token");
      const presented = createHash("sha256").update(match[1]!).digest();
      let found: CallerConfig | undefined;
      for (const { caller, digest } of digests) {
        if (digest.length === presented.length && timingSafeEqual(digest, presented)) found = caller;
      }
      if (found === undefined) throw new UnauthenticatedError("unknown bearer token");
      return {
        id: found.id,
        ...(found.channels ? { channels: found.channels } : {}),
        ...(found.countries ? { countries: found.countries } : {}),
        ...(found.routes ? { routes: found.routes } : {}),
        ...(found.senders ? { senders: found.senders } : {}),
      };
    },
  };
}
