import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { HttpRoutePeer } from "../peers/http-route-peer.js";
import type { SmtpPeer } from "../peers/smtp-peer.js";
import { sha256 } from "./app-fixture.js";

/**
 * A configuration file (OTP_CONFIG): SMS through the HTTP SMS API peer (Dutch OTP route, 0.072 EUR), then email
 * through the SMTP peer (0.001 EUR) — the SMS step escalates when undelivered within 60 s, the email's when
 * unused — and one caller, `checkout`, with `token`, sending to NL.
 */
export function writeSmsThenEmailConfig(sms: HttpRoutePeer, smtp: SmtpPeer, token: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), "otp-sms-email-")), "otp.yaml");
  writeFileSync(
    file,
    [
      "providers:",
      `  bridgex: { type: http-route, base_url: "${sms.baseUrl}", api_key: sms-key, webhook_secret: sms-secret, idempotency_key: true, timeout: 2s }`,
      `  mail: { type: smtp, host: 127.0.0.1, port: ${smtp.port}, timeout: 2s }`,
      "routes:",
      "  - { id: sms-nl-otp, channel: sms, provider: bridgex, provider_route: 3, traffic_class: otp, sender: ACME, countries: [NL], prices: { NL: 0.072 } }",
      '  - { id: email-otp, channel: email, provider: mail, traffic_class: otp, sender: "Acme <no-reply@acme.example>", prices: { "*": 0.001 } }',
      "policies:",
      "  default:",
      "    steps:",
      "      - { channel: sms, deadline: 60s, escalate_when: undelivered }",
      "      - { channel: email, deadline: 60s, escalate_when: unverified }",
      "callers:",
      `  checkout: { token_sha256: ${sha256(token)}, countries: [NL] }`,
      "",
    ].join("\n"),
  );
  return file;
}
