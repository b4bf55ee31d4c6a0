import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../src/channels/provider.js";
import { SmtpProvider } from "../../src/channels/providers/smtp/smtp-provider.js";
import { renderEmail } from "../../src/domain/message.js";
import { freePort } from "../harness/free-port.js";
import { SmtpPeer } from "../peers/smtp-peer.js";
import { providerFailure } from "../harness/provider-failure.js";

let n = 0;
function email(to = `user${++n}@example.com`, code = "48213907"): OutboundMessage {
  const rendered = renderEmail(code, { brand: "Acme" });
  return {
    attemptId: `att-mail-${n}`,
    verificationId: "vrf-mail",
    channel: "email",
    providerRoute: "email-otp",
    to,
    sender: "Acme <no-reply@acme.example>",
    subject: rendered.subject,
    text: rendered.text,
    html: rendered.html,
  };
}

describe("SMTP email provider against a real SMTP server on loopback", () => {
  let peer: SmtpPeer;
  let provider: SmtpProvider;
  beforeAll(async () => {
    peer = await SmtpPeer.start();
    provider = new SmtpProvider({ name: "mail", type: "smtp", host: "127.0.0.1", port: peer.port, secure: false, timeoutMs: 5_000 });
  });
  afterAll(async () => {
    provider?.close();
    await peer?.stop();
  });

  it("delivers the code in the subject, a text part and an HTML part, with the attempt id in the Message-ID", async () => {
    const m = email();
    const result = await provider.submit(m, AbortSignal.timeout(5_000));
    const mail = await peer.nextMailTo(m.to);
    expect(mail.envelopeFrom).toBe("no-reply@acme.example");
    expect(mail.subject).toBe("48213907 is your Acme verification code");
    expect(mail.text).toContain("4821 3907");
    expect(mail.html).toContain(">4821 3907</p>");
    expect(mail.html).toContain("<html lang=\"en\" dir=\"ltr\">");
    expect(mail.headers.get("message-id")).toBe(`<${m.attemptId}@otp-orchestrator>`);
    expect(result).toEqual({ providerMessageId: `<${m.attemptId}@otp-orchestrator>`, delivered: false });
  });

  it("treats an SMTP 5xx reply as permanent and a 4xx reply as retryable, neither as possibly sent", async () => {
    const gone = email();
    peer.onRecipient(gone.to, { kind: "reply", code: 550, message: "mailbox unavailable" });
    expect(await providerFailure(provider.submit(gone, AbortSignal.timeout(5_000)))).toMatchObject({ retryable: false, ambiguous: false, code: "smtp_550" });
    const busy = email();
    peer.onRecipient(busy.to, { kind: "reply", code: 451, message: "try again later" });
    expect(await providerFailure(provider.submit(busy, AbortSignal.timeout(5_000)))).toMatchObject({ retryable: true, ambiguous: false, code: "smtp_451" });
    expect(peer.received.filter((m) => m.envelopeTo.includes(gone.to) || m.envelopeTo.includes(busy.to))).toEqual([]);
  });

  it("treats a refused connection as retryable and not sent", async () => {
    const closed = new SmtpProvider({ name: "mail", type: "smtp", host: "127.0.0.1", port: await freePort(), secure: false, timeoutMs: 2_000 });
    try {
      expect(await providerFailure(closed.submit(email(), AbortSignal.timeout(5_000)))).toMatchObject({ retryable: true, ambiguous: false });
    } finally {
      closed.close();
    }
  });
});
