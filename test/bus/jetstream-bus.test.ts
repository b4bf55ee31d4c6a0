import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { Consumer } from "../../src/bus/bus.js";
import { JetStreamBus } from "../../src/bus/jetstream-bus.js";
import { waitFor } from "../harness/free-port.js";
import { busContract } from "./bus-contract.js";

/** A bus on fresh streams: the previous test's streams (and their messages) are deleted first. */
async function freshBus(options: { ackWaitMs?: number } = {}): Promise<JetStreamBus> {
  const nc = await connect({ servers: inject("natsUrl") });
  const jsm = await jetstreamManager(nc);
  for (const name of ["TEST_DISPATCH", "TEST_EVENTS"]) await jsm.streams.delete(name).catch(() => false);
  await nc.close();
  return JetStreamBus.connect({ servers: inject("natsUrl"), dispatchStream: "TEST_DISPATCH", eventsStream: "TEST_EVENTS", ...options });
}

busContract("JetStream", () => freshBus());

describe("JetStream consumers with handlers slower than the ack wait allows", () => {
  let bus: JetStreamBus | undefined;
  let consumer: Consumer | undefined;
  afterEach(async () => {
    await consumer?.stop();
    await bus?.close();
  });

  /** Publishes `count` messages, handles them `maxInFlight` at a time taking `handleMs` each, and counts runs per message. */
  async function handleAll(count: number, maxInFlight: number, handleMs: number, ackWaitMs: number) {
    bus = await freshBus({ ackWaitMs });
    for (let i = 0; i < count; i++) await bus.publish("otp.dispatch.sms", Buffer.from(`m${i}`), { msgId: `slow-${i}` });
    const runs = new Map<string, number>();
    let running = 0;
    let mostAtOnce = 0;
    consumer = await bus.consume({ durable: "slow", subjects: ["otp.dispatch.sms"], maxInFlight, maxDeliver: 5 }, async (m) => {
      const id = Buffer.from(m.data).toString();
      runs.set(id, (runs.get(id) ?? 0) + 1);
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await new Promise((resolve) => setTimeout(resolve, handleMs));
      running -= 1;
      return { kind: "ack" };
    });
    await waitFor(`${count} messages handled`, async () => [...runs.values()].reduce((a, b) => a + b, 0) >= count && running === 0, 30_000, 20);
    // Long enough for any redelivery of a message whose ack wait ran out to have arrived.
    await new Promise((resolve) => setTimeout(resolve, ackWaitMs + 500));
    return { runs, mostAtOnce };
  }

  it("takes no message before a slot is free to start it, so a queued message's ack wait never runs out", async () => {
    // Each message takes 70 % of the ack wait; with a prefetch of one batch, the second batch waits 70 % more.
    const { runs, mostAtOnce } = await handleAll(8, 2, 700, 1_000);
    expect([...runs].filter(([, n]) => n !== 1)).toEqual([]);
    expect(runs.size).toBe(8);
    expect(mostAtOnce).toBeLessThanOrEqual(2);
  });

  it("keeps a message that takes longer than the ack wait from being redelivered while it runs", async () => {
    const { runs } = await handleAll(2, 2, 2_500, 1_000);
    expect([...runs].filter(([, n]) => n !== 1)).toEqual([]);
  });
});
