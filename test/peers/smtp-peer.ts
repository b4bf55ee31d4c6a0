import { EventEmitter, once } from "node:events";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

/** A message the SMTP peer accepted, parsed enough for assertions. */
export interface ReceivedMail {
  readonly envelopeFrom: string;
  readonly envelopeTo: readonly string[];
  readonly headers: ReadonlyMap<string, string>;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
  readonly raw: string;
}

/** What the peer answers at RCPT TO for one address: take it, or reply with this SMTP code. */
export type RecipientBehaviour = { readonly kind: "accept" } | { readonly kind: "reply"; readonly code: number; readonly message: string };

/**
 * A real SMTP server (smtp-server, from the nodemailer project) on loopback:
 * accepts mail, or answers a scripted 4xx/5xx per recipient.
 */
export class SmtpPeer {
  readonly received: ReceivedMail[] = [];
  private readonly behaviour = new Map<string, RecipientBehaviour>();
  private readonly events = new EventEmitter();

  private constructor(private readonly server: SMTPServer) {}

  static async start(): Promise<SmtpPeer> {
    let peer: SmtpPeer | undefined;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo: (address, _session, callback) => {
        const b = peer!.behaviour.get(address.address.toLowerCase());
        if (b?.kind === "reply") return callback(Object.assign(new Error(b.message), { responseCode: b.code }));
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          const mail = parseMail(Buffer.concat(chunks).toString("utf8"), session.envelope);
          peer!.received.push(mail);
          peer!.events.emit("mail", mail);
          callback();
        });
      },
    });
    // A client that vanishes mid-session (a worker killed with its pooled connections open) is an "error" of the
    // server's; unheard, it would be an uncaught exception in the test process. Tests see what was received.
    server.on("error", () => {});
    peer = new SmtpPeer(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return peer;
  }

  get port(): number {
    return (this.server.server.address() as AddressInfo).port;
  }

  onRecipient(address: string, behaviour: RecipientBehaviour): void {
    this.behaviour.set(address.toLowerCase(), behaviour);
  }

  /** Calls `listener` with each message accepted from now on. */
  onMail(listener: (mail: ReceivedMail) => void): void {
    this.events.on("mail", listener);
  }

  async nextMailTo(address: string, timeoutMs = 15_000): Promise<ReceivedMail> {
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = this.received.find((m) => m.envelopeTo.includes(address));
      if (found) return found;
      await once(this.events, "mail", { signal });
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

type Envelope = { mailFrom: false | { address: string }; rcptTo: Array<{ address: string }> };

/** Headers, and the text/plain and text/html parts of a (multipart/alternative) message. */
function parseMail(raw: string, envelope: Envelope): ReceivedMail {
  const { headers, body } = splitEntity(raw);
  const parts: Record<string, string> = {};
  const boundary = /boundary="?([^";]+)"?/i.exec(headers.get("content-type") ?? "")?.[1];
  const entities = boundary ? body.split(`--${boundary}`).slice(1, -1).map(splitEntity) : [{ headers, body }];
  for (const entity of entities) {
    const type = (entity.headers.get("content-type") ?? "text/plain").split(";")[0]!.trim();
    parts[type] = decodeBody(entity.body, entity.headers.get("content-transfer-encoding") ?? "7bit");
  }
  return {
    envelopeFrom: envelope.mailFrom ? envelope.mailFrom.address : "",
    envelopeTo: envelope.rcptTo.map((r) => r.address),
    headers,
    subject: decodeWords(headers.get("subject") ?? ""),
    text: parts["text/plain"] ?? "",
    html: parts["text/html"] ?? "",
    raw,
  };
}

function splitEntity(text: string): { headers: Map<string, string>; body: string } {
  const start = text.replace(/^\r?\n/, "");
  const end = start.search(/\r?\n\r?\n/);
  const head = end < 0 ? start : start.slice(0, end);
  const body = end < 0 ? "" : start.slice(end).replace(/^\r?\n\r?\n/, "");
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** RFC 2047 encoded words ("=?UTF-8?B?…?=", "=?UTF-8?Q?…?="), as mailers write non-ASCII headers; the space between two is not text. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, kind: string, data: string) =>
      kind.toLowerCase() === "b"
        ? Buffer.from(data, "base64").toString("utf8")
        : Buffer.from(data.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (__, hex: string) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8"),
    );
}

/** A part's text, decoded, with the wire's CRLF line ends as LF. */
function decodeBody(body: string, encoding: string): string {
  return decodeTransfer(body, encoding).replace(/\r\n/g, "\n");
}

function decodeTransfer(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    case "quoted-printable":
      return Buffer.from(
        body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
        "latin1",
      ).toString("utf8");
    default:
      return body.trimEnd();
  }
}
