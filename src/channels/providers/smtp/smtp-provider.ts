import nodemailer, { type Transporter } from "nodemailer";
import type { ProviderSettings } from "../../../config/config-file.js";
import { ProviderError, type OutboundMessage, type Provider, type SubmitResult } from "../../provider.js";

export type SmtpSettings = Extract<ProviderSettings, { type: "smtp" }>;

/** SMTP commands before the message itself is transferred: a failure there sent nothing. */
const BEFORE_DATA = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL FROM|RCPT TO)/;

/**
 * Email over SMTP (nodemailer, pooled connections). The relay's acceptance is
 * SUBMITTED; SMTP has no delivery receipt, so email steps escalate on
 * "unverified". A 5xx reply is permanent, a 4xx reply retried; SMTP has no
 * idempotency key, so a call that may have been taken is never repeated.
 */
export class SmtpProvider implements Provider {
  readonly name: string;
  readonly idempotent = false;
  readonly timeoutMs: number;
  private readonly transport: Transporter;

  constructor(settings: SmtpSettings) {
    this.name = settings.name;
    this.timeoutMs = settings.timeoutMs;
    this.transport = nodemailer.createTransport({
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      pool: true,
      maxConnections: 4,
      connectionTimeout: settings.timeoutMs,
      greetingTimeout: settings.timeoutMs,
      socketTimeout: settings.timeoutMs,
      ...(settings.username ? { auth: { user: settings.username, pass: settings.password?.reveal() ?? "" } } : {}),
      // No logger: nodemailer's transcript would carry the message, code included.
      logger: false,
    });
  }

  async submit(message: OutboundMessage, signal: AbortSignal): Promise<SubmitResult> {
    const sending = this.transport.sendMail({
      from: message.sender,
      to: message.to,
      subject: message.subject ?? "",
      text: message.text,
      ...(message.html ? { html: message.html } : {}),
      messageId: `<${message.attemptId}@otp-orchestrator>`,
      headers: message.traceparent ? { traceparent: message.traceparent } : {},
    });
    let info: { messageId: string };
    try {
      info = await abortable(sending, signal);
    } catch (error) {
      throw classify(error);
    }
    return { providerMessageId: info.messageId, delivered: false };
  }

  close(): void {
    this.transport.close();
  }
}

function classify(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const e = error as { responseCode?: number; code?: string; command?: string; response?: string };
  if (typeof e.responseCode === "number") {
    const reply = (e.response ?? "").split("\n")[0]!.slice(0, 200);
    const permanent = e.responseCode >= 500;
    return new ProviderError(`SMTP server replied ${reply || e.responseCode}`, !permanent, `smtp_${e.responseCode}`);
  }
  // A dropped connection during or after DATA may have left the message with the server.
  const code = e.code ?? "network";
  const sentNothing = BEFORE_DATA.test(e.command ?? "");
  return new ProviderError(`SMTP failed (${code}${e.command ? ` at ${e.command}` : ""})`, true, code.toLowerCase(), !sentNothing);
}

async function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new ProviderError("SMTP server did not answer in time", true, "timeout", true);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new ProviderError("SMTP server did not answer in time", true, "timeout", true));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort!);
    work.catch(() => {});
  }
}
