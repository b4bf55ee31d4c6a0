/**
 * The event bus as the rest of the code sees it. Two implementations share one
 * contract test suite: in-process (dev, unit tests) and NATS JetStream.
 *
 * Two kinds of traffic:
 * - work queues (`otp.dispatch.<channel>`): each message is handled by one
 *   consumer of a durable, acknowledged, redelivered on failure;
 * - broadcast (`otp.events.<verification_id>`): every live subscriber sees every
 *   message; history lives in the database (and, with JetStream, in the stream).
 */

export interface PublishOptions {
  /** De-duplication id: a second publish with the same id inside the window is dropped. */
  readonly msgId: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
}

/** What a work-queue handler decides about a message. */
export type Settlement =
  | { readonly kind: "ack" }
  /** Deliver again after `delayMs` (retryable failure). */
  | { readonly kind: "nak"; readonly delayMs: number }
  /** Never deliver again (poison message, permanent failure already recorded). */
  | { readonly kind: "term" };

export interface ConsumeOptions {
  /** Durable consumer name: consumers with the same name share the work. */
  readonly durable: string;
  /** Subject filters, NATS wildcards allowed ("otp.dispatch.sms"). */
  readonly subjects: readonly string[];
  /** Messages handled at once by this consumer. */
  readonly maxInFlight: number;
  /** Deliveries before the bus gives up on a message. */
  readonly maxDeliver: number;
}

/**
 * Handles one message. A handler that throws gets the message redelivered
 * after a backoff, until `maxDeliver`.
 */
export type MessageHandler = (message: BusMessage) => Promise<Settlement>;

export interface Consumer {
  /** Stops pulling and waits for messages in flight to finish. */
  stop(): Promise<void>;
}

export interface Bus {
  publish(subject: string, data: Uint8Array, options: PublishOptions): Promise<void>;
  consume(options: ConsumeOptions, handler: MessageHandler): Promise<Consumer>;
  /** Live broadcast subscription; returns the function that ends it. */
  subscribe(subject: string, listener: (message: BusMessage) => void): Promise<() => void>;
  /** Messages stored on work-queue subjects matching `pattern` and not yet acknowledged, by subject. */
  backlog(pattern: string): Promise<ReadonlyMap<string, number>>;
  close(): Promise<void>;
}

/** Backoff between redeliveries: 1 s, 2 s, 4 s … capped at 60 s. */
export function redeliveryDelayMs(deliveryCount: number): number {
  return Math.min(60_000, 1_000 * 2 ** Math.max(0, deliveryCount - 1));
}

/** NATS subject matching: "*" is one token, ">" the rest (at least one token). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
