import type { Bus } from "../bus/bus.js";
import type { Clock } from "../domain/ports.js";
import type { Db } from "../store/database.js";
import { markPublishedByMsgId, type OutboxMessage } from "../store/repositories/outbox.js";
import { contextOf, inSpan, ownTraceparent, SpanKind } from "../telemetry/spans.js";
import { GroupRunner } from "../util/group-runner.js";

/** Publishes (and marks) in flight at once; beyond it, messages wait for the relay (a bus that stopped answering). */
const MAX_IN_FLIGHT = 4_096;
/** Messages marked published by one statement. */
const MAX_MARK_GROUP = 1_024;
const MARKS_IN_FLIGHT = 2;

/**
 * Publishes outbox messages as soon as the transaction that wrote them has
 * committed, from memory, and marks their rows published (one statement for
 * the messages acknowledged together). The relay (outbox-relay.ts) publishes
 * only rows this missed: a process that died after its commit, a bus away, a
 * mark that failed. So a commit's messages cost one grouped statement instead
 * of the relay's four (claim, mark and their transaction), and reach the bus
 * without waiting for a relay's round trips.
 *
 * A message published here and again by the relay (its mark lost) carries
 * the same msg id both times: the bus drops the second.
 */
export class OutboxPublisher {
  private inFlight = 0;
  private whenIdle: Array<() => void> = [];
  private readonly marks: GroupRunner<string, void>;

  constructor(
    private readonly db: Db,
    private readonly bus: Bus,
    private readonly clock: Clock,
  ) {
    this.marks = new GroupRunner((msgIds) => this.mark(msgIds), { maxGroup: MAX_MARK_GROUP, maxInFlight: MARKS_IN_FLIGHT });
  }

  /** Call after the commit that wrote `messages`' rows; never throws, never waits. */
  publishCommitted(messages: readonly OutboxMessage[]): void {
    for (const message of messages) {
      if (this.inFlight >= MAX_IN_FLIGHT) return;
      this.inFlight += 1;
      // A failed publish is not logged here: with the bus away every commit would log. The row stays
      // unpublished, the relay retries it (and logs its failures once per try).
      void publishOutboxMessage(this.bus, message)
        .then(() => this.marks.submit(message.msgId))
        .catch(() => undefined)
        .finally(() => this.settle());
    }
  }

  /** Resolves once every publish and mark started so far has ended (before the bus and database close). */
  settled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.whenIdle.push(resolve));
  }

  private settle(): void {
    this.inFlight -= 1;
    if (this.inFlight > 0) return;
    const waiting = this.whenIdle;
    this.whenIdle = [];
    for (const resolve of waiting) resolve();
  }

  /** Never fails: a row whose mark is lost is published again by the relay, and dropped by the bus as a duplicate. */
  private async mark(msgIds: readonly string[]): Promise<void[]> {
    await markPublishedByMsgId(this.db, msgIds, this.clock.now()).catch(() => undefined);
    return msgIds.map(() => undefined);
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
