import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BusMessage } from "../../src/bus/bus.js";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { OutboxPublisher } from "../../src/dispatch/outbox-publisher.js";
import { RELAY_GRACE_MS, relayOutboxBatch } from "../../src/dispatch/outbox-relay.js";
import type { Db } from "../../src/store/database.js";
import { outboxRow, type OutboxMessage } from "../../src/store/repositories/outbox.js";
import { BACKENDS } from "../harness/databases.js";
import { FakeClock } from "../harness/fakes.js";
import { waitFor } from "../harness/free-port.js";

describe.each(BACKENDS)("outbox publishing on $name", (backend) => {
  let db: Db;
  let clock: FakeClock;
  let bus: MemoryBus;
  let received: BusMessage[];
  let written = 0;

  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });
  beforeEach(async () => {
    clock = new FakeClock();
    bus = new MemoryBus({ workQueueSubjects: [] });
    received = [];
    await bus.subscribe("otp.test.>", (message) => received.push(message));
  });

  /** Messages written as a commit would write them, each with an id of its own. */
  async function committed(count: number): Promise<OutboxMessage[]> {
    const messages = Array.from({ length: count }, (_, i) => ({ msgId: `m${(written += 1)}`, subject: `otp.test.${i}`, payload: Buffer.from(`payload ${i}`), headers: { k: "v" } }));
    await db.insertInto("outbox").values(messages.map((m) => outboxRow(m, clock.now()))).execute();
    return messages;
  }

  const unpublished = async (messages: readonly OutboxMessage[]) =>
    (await db.selectFrom("outbox").select("msg_id").where("msg_id", "in", messages.map((m) => m.msgId)).where("published_at", "is", null).execute()).map((r) => r.msg_id);

  it("publishes a commit's messages right away and marks their rows, with no relay running", async () => {
    const messages = await committed(3);
    const publisher = new OutboxPublisher(db, bus, clock);
    publisher.publishCommitted(messages);
    // Marked by itself, a moment later (not only when the process stops and asks for it).
    await waitFor("the rows marked published", async () => (await unpublished(messages)).length === 0, 5_000, 20);

    expect(received.map((m) => [m.subject, Buffer.from(m.data).toString(), m.headers.k])).toEqual([
      ["otp.test.0", "payload 0", "v"],
      ["otp.test.1", "payload 1", "v"],
      ["otp.test.2", "payload 2", "v"],
    ]);
    // Nothing is left for the relay, however late it looks.
    clock.advance(RELAY_GRACE_MS + 1);
    expect(await relayOutboxBatch(db, bus, clock, 100)).toBe(0);
    expect(received).toHaveLength(3);
  });

  it("leaves what it could not publish to the relay, which takes rows only once they are past its grace", async () => {
    const messages = await committed(2);
    // The bus refuses (closed): the rows stay unpublished and nothing throws at the caller.
    const closed = new MemoryBus({ workQueueSubjects: [] });
    await closed.close();
    const publisher = new OutboxPublisher(db, closed, clock);
    publisher.publishCommitted(messages);
    await publisher.settled();
    expect(await unpublished(messages)).toEqual(messages.map((m) => m.msgId));

    // Young rows belong to the process that wrote them (it may be publishing them right now).
    clock.advance(RELAY_GRACE_MS - 1);
    expect(await relayOutboxBatch(db, bus, clock, 100)).toBe(0);
    expect(received).toEqual([]);

    clock.advance(2);
    expect(await relayOutboxBatch(db, bus, clock, 100)).toBe(2);
    expect(received.map((m) => m.subject)).toEqual(["otp.test.0", "otp.test.1"]);
    expect(await unpublished(messages)).toEqual([]);
  });

  it("lets the relay publish a row its writer never published (it died after committing) once past the grace, and not a younger one", async () => {
    const messages = await committed(1);
    clock.advance(RELAY_GRACE_MS + 1);
    const late = await committed(1);
    // Only the first is past the grace: the relay publishes it; the second is still its writer's to publish.
    expect(await relayOutboxBatch(db, bus, clock, 100)).toBe(1);
    expect(await unpublished([...messages, ...late])).toEqual(late.map((m) => m.msgId));
  });
});
