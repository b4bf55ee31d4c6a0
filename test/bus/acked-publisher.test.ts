import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AckedPublisher } from "../../src/bus/acked-publisher.js";

describe("AckedPublisher on nats-server", () => {
  let nc: NatsConnection;
  let publisher: AckedPublisher;
  beforeAll(async () => {
    nc = await connect({ servers: inject("natsUrl") });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete("TEST_ACKED").catch(() => false);
    // Room for one message, and a refusal (not an eviction) for the next.
    await jsm.streams.add({ name: "TEST_ACKED", subjects: ["acked.>"], max_msgs: 1, discard: DiscardPolicy.New });
    publisher = new AckedPublisher(nc);
  });
  afterAll(async () => {
    await nc?.close();
  });

  const withMsgId = (id: string) => {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    return h;
  };

  it("resolves once the stream stored the message, and drops a repeated msg id", async () => {
    await publisher.publish("acked.one", Buffer.from("first"), withMsgId("one"));
    await publisher.publish("acked.one", Buffer.from("again"), withMsgId("one"));
    const info = await (await jetstreamManager(nc)).streams.info("TEST_ACKED");
    expect(info.state.messages).toBe(1);
  });

  it("rejects with the stream's reason when the stream refuses the message", async () => {
    await expect(publisher.publish("acked.two", Buffer.from("second"), withMsgId("two"))).rejects.toThrow(/acked\.two: JetStream refused it: maximum messages exceeded/);
  });

  it("rejects at once when no stream takes the subject", async () => {
    await expect(publisher.publish("nobody.listens", Buffer.from("x"), withMsgId("lost"))).rejects.toThrow(/nobody\.listens: no JetStream stream takes this subject/);
  });

  it("rejects the publishes still waiting when told the connection closed, and a publish on a closed connection", async () => {
    const other = await connect({ servers: inject("natsUrl") });
    const own = new AckedPublisher(other);
    const waiting = own.publish("acked.three", Buffer.from("x"), withMsgId("three")); // its answer needs a turn of the loop
    own.closed();
    await expect(waiting).rejects.toThrow(/acked\.three: the bus closed before JetStream acknowledged/);
    await other.close();
    await expect(own.publish("acked.four", Buffer.from("x"), withMsgId("four"))).rejects.toThrow();
  });
});
