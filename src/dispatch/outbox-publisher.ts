import type { Bus } from "../bus/bus.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { markPublishedByMsgId, type OutboxMessage } from "../store/repositories/outbox.js";
import { contextOf, inSpan, ownTraceparent, SpanKind } from "../telemetry/spans.js";

/** Publishes in flight at once; beyond it, messages wait for the relay (a bus that stopped answering). */
const MAX_IN_FLIGHT = 4_096;
/**
 * How long acknowledged messages wait to be marked published together. A mark
 * only has to come before the relay's grace (5 s): gathered for 100 ms, a
 * process's marks are a few statements a second at any rate, not one per
 * commit. A mark lost with its process means one more publish, dropped by the bus.
 */
const MARK_DELAY_MS = 100;
/** Messages marked published by one statement. */
const MAX_MARK_GROUP = 1_024;

/**
 * Publishes outbox messages as soon as the transaction that wrote them has
 * committed, from memory, and marks their rows published a little later, many
 * in one statement. The relay (outbox-relay.ts) publishes only rows this
 * missed: a process that died after its commit, a bus away, a mark that
 * failed. So messages reach the bus without waiting for a relay's round trips,
 * and cost no statements of their own: the relay's claim, mark and their
 * transaction were four statements for every few messages.
 *
 * A message published here and again by the relay (its mark lost) carries
 * the same msg id both times: the bus drops the second.
 */
export class OutboxPublisher {
  private inFlight = 0;
  private whenIdle: Array<() => void> = [];
  private acknowledged: string[] = [];
  private markTimer: NodeJS.Timeout | undefined;
  private marking: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly bus: Bus,
    private readonly clock: Clock,
  ) {}

  /** Call after the commit that wrote `messages`' rows; never throws, never waits. */
  publishCommitted(messages: readonly OutboxMessage[]): void {
    for (const message of messages) {
      if (this.inFlight >= MAX_IN_FLIGHT) return;
      this.inFlight += 1;
      // A failed publish is not logged here: with the bus away every commit would log. The row stays
      // unpublished, the relay retries it (and logs its failures once per try).
      void publishOutboxMessage(this.bus, message)
        .then(() => this.toMark(message.msgId))
        .catch(() => undefined)
        .finally(() => this.settle());
    }
  }

  /** Resolves once every publish started so far has ended and its mark is written (before the bus and database close). */
  async settled(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.whenIdle.push(resolve));
    clearTimeout(this.markTimer);
    this.markAcknowledged();
    await this.marking;
  }

  private settle(): void {
    this.inFlight -= 1;
    if (this.inFlight > 0) return;
    const waiting = this.whenIdle;
    this.whenIdle = [];
    for (const resolve of waiting) resolve();
  }

  private toMark(msgId: string): void {
    this.acknowledged.push(msgId);
    this.markTimer ??= setTimeout(() => this.markAcknowledged(), MARK_DELAY_MS).unref();
  }

  /** Never fails: a row whose mark is lost is published again by the relay, and dropped by the bus as a duplicate. */
  private markAcknowledged(): void {
    this.markTimer = undefined;
    const msgIds = this.acknowledged;
    if (msgIds.length === 0) return;
    this.acknowledged = [];
    const now = this.clock.now();
    // One mark after the other: they touch disjoint rows, but need not compete for connections.
    this.marking = this.marking.then(async () => {
      for (let i = 0; i < msgIds.length; i += MAX_MARK_GROUP) {
        await markPublishedByMsgId(this.db, msgIds.slice(i, i + MAX_MARK_GROUP), now).catch(() => undefined);
      }
    });
  }
}

/**
 * Publishes one outbox message. A traced message gets a PRODUCER span under
 * the context stored with it; the consumer continues from this span.
 */
export function publishOutboxMessage(bus: Bus, message: OutboxMessage): Promise<void> {
  const publish = (headers: Readonly<Record<string, string>> | undefined) =>
    bus.publish(message.subject, message.payload, { msgId: message.msgId, ...(headers ? { headers } : {}) });
  const stored = message.headers?.traceparent;
  if (stored === undefined) return publish(message.headers);
  const attributes = { "messaging.system": "nats", "messaging.destination.name": message.subject, "messaging.message.id": message.msgId };
  const parent = contextOf(stored);
  return inSpan("otp.outbox.relay", { kind: SpanKind.PRODUCER, parent, attributes }, (span) =>
    publish({ ...message.headers, traceparent: ownTraceparent(span, parent) ?? stored }),
  );
}
