import { createInbox, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";

/** How long a publish waits for its stream's acknowledgement (nats.js's JetStream default). */
const ACK_TIMEOUT_MS = 5_000;

interface Waiting {
  readonly subject: string;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Publishes to JetStream and resolves when the stream has stored the message,
 * as nats.js's `js.publish` does: the message goes out with a reply subject,
 * and the stream answers it with its acknowledgement or its error. One
 * subscription takes every publish's answer.
 *
 * Why not `js.publish`: it is a core request, and nats.js (3.3, 3.4) builds an
 * Error, its stack captured, for every request that succeeds (RequestOne's
 * resolver calls `cancel()`, which rejects the settled promise with a new
 * RequestError). Measured alone, `js.publish` took three times the CPU per
 * publish that this does (BENCHMARKS.md, 2026-12-06 (11)).
 */
export class AckedPublisher {
  private readonly inbox = createInbox();
  private readonly waiting = new Map<string, Waiting>();
  private sent = 0;

  constructor(private readonly nc: NatsConnection) {
    // The client subscribes again by itself after a reconnect.
    nc.subscribe(`${this.inbox}.*`, {
      callback: (error, msg) => {
        if (error === null) this.answered(msg);
      },
    });
  }

  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<void> {
    const token = (++this.sent).toString(36);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(token, new Error(`${subject}: no acknowledgement from JetStream in ${ACK_TIMEOUT_MS} ms`)), ACK_TIMEOUT_MS);
      this.waiting.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers });
      } catch (error) {
        this.settle(token, error as Error); // the connection is closed
      }
    });
  }

  /** After the connection closed: fails the publishes still waiting (their messages may be stored; the outbox publishes them again). */
  closed(): void {
    for (const token of [...this.waiting.keys()]) this.settle(token, new Error(`${this.waiting.get(token)!.subject}: the bus closed before JetStream acknowledged`));
  }

  private answered(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    const subject = this.waiting.get(token)?.subject;
    if (subject === undefined) return; // timed out already
    // No stream takes the subject: the server answers for it with a 503 status.
    if (msg.headers?.code === 503) return this.settle(token, new Error(`${subject}: no JetStream stream takes this subject`));
    let answer: { error?: { description?: string } };
    try {
      answer = msg.json();
    } catch {
      return this.settle(token, new Error(`${subject}: JetStream's answer is not JSON`));
    }
    this.settle(token, answer.error === undefined ? undefined : new Error(`${subject}: JetStream refused it: ${answer.error.description ?? "no reason given"}`));
  }

  private settle(token: string, error?: Error): void {
    const waiting = this.waiting.get(token);
    if (waiting === undefined) return;
    this.waiting.delete(token);
    clearTimeout(waiting.timer);
    if (error === undefined) waiting.resolve();
    else waiting.reject(error);
  }
}
