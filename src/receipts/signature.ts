import { createHmac, timingSafeEqual } from "node:crypto";

/** "sha256=<hex>" of HMAC-SHA-256 over the raw body: what a provider sends in its signature header. */
export function signBody(secret: string, rawBody: Buffer | string): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`;
}

/** Constant-time check of a signature header against the body. */
export function verifyBodySignature(secret: string, rawBody: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(signBody(secret, rawBody));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
