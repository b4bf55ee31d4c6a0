import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Twilio's request signature (`X-Twilio-Signature`): base64 HMAC-SHA1, keyed
 * with the auth token, of the full URL Twilio posted to followed by every POST
 * parameter, sorted by name, each name and value appended.
 */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data = url + sorted.map(([name, value]) => name + value).join("");
  return createHmac("sha1", authToken).update(data, "utf8").digest("base64");
}

/** Constant-time check of a callback's signature header against its URL and form body. */
export function verifyTwilioSignature(authToken: string, url: string, params: URLSearchParams, header: string | string[] | undefined): boolean {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(twilioSignature(authToken, url, params));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
