import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Bus, BusMessage, Consumer, Settlement } from "../../src/bus/bus.js";
import { waitFor } from "../harness/free-port.js";

/**
 * What every Bus implementation must do. Run against each implementation with
 * a factory that gives a fresh, isolated bus.
 */
export function busContract(name: string, makeBus: () => Promise<Bus>): void {
  describe(`Bus contract: ${name}`, () => {
    let bus: Bus;
    const consumers: Consumer[] = [];
    const data = (text: string) => Buffer.from(text);
    const text = (m: BusMessage) => Buffer.from(m.data).toString();

    beforeEach(async () => {
      bus = await makeBus();
    });
    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.stop()));
      await bus.close();
    });

    const consume = async (handler: (m: BusMessage) => Promise<Settlement>, maxDeliver = 5) => {
      const consumer = await bus.consume({ durable: "test", subjects: ["otp.dispatch.sms"], maxInFlight: 4, maxDeliver }, handler);
      consumers.push(consumer);
      return consumer;
    };

    it("hands each work-queue message to one consumer, with headers", async () => {
      const seen: string[] = [];
      await bus.publish("otp.dispatch.sms", data("a"), { msgId: "m1", headers: { traceparent: "00-x" } });
      await bus.publish("otp.dispatch.sms", data("b"), { msgId: "m2" });
      const headers: Array<Record<string, string>> = [];
      await consume(async (m) => {
        seen.push(text(m));
        headers.push({ ...m.headers });
        return { kind: "ack" };
      });
      await waitFor("both messages", async () => seen.length === 2, 5_000);
      expect(seen.sort()).toEqual(["a", "b"]);
      expect(headers.find((h) => h.traceparent)?.traceparent).toBe("00-x");
    });

    it("drops a second publish with the same msg id", async () => {
      const seen: string[] = [];
      await bus.publish("otp.dispatch.sms", data("first"), { msgId: "same" });
      await bus.publish("otp.dispatch.sms", data("second"), { msgId: "same" });
      await bus.publish("otp.dispatch.sms", data("marker"), { msgId: "marker" });
      await consume(async (m) => {
        seen.push(text(m));
        return { kind: "ack" };
      });
      await waitFor("the marker", async () => seen.includes("marker"), 5_000);
      expect(seen.filter((s) => s !== "marker")).toEqual(["first"]);
    });

    it("redelivers a nak'd message with a higher delivery count, and stops at maxDeliver", async () => {
      const counts: number[] = [];
      await bus.publish("otp.dispatch.sms", data("x"), { msgId: "retry" });
      await consume(async (m) => {
        counts.push(m.deliveryCount);
        return { kind: "nak", delayMs: 10 };
      }, 3);
      await waitFor("three deliveries", async () => counts.length >= 3, 10_000);
      await bus.publish("otp.dispatch.sms", data("after"), { msgId: "after" });
      await waitFor("a later message to arrive", async () => counts.length >= 4, 10_000);
      expect(counts.slice(0, 3)).toEqual([1, 2, 3]);
      expect(counts[3]).toBe(1); // the new message, not a fourth delivery of the first
    });

    it("treats a throwing handler as a nak", async () => {
      let calls = 0;
      await bus.publish("otp.dispatch.sms", data("x"), { msgId: "boom" });
      await consume(async () => {
        calls += 1;
        if (calls === 1) throw new Error("transient");
        return { kind: "ack" };
      });
      await waitFor("the redelivery", async () => calls === 2, 10_000);
    });

    it("broadcasts event subjects to every live subscriber", async () => {
      const a: string[] = [];
      const b: string[] = [];
      const stopA = await bus.subscribe("otp.events.>", (m) => a.push(m.subject));
      const stopB = await bus.subscribe("otp.events.vrf_1", (m) => b.push(m.subject));
      await bus.publish("otp.events.vrf_1", data("e1"), { msgId: "e1" });
      await bus.publish("otp.events.vrf_2", data("e2"), { msgId: "e2" });
      await waitFor("both events at the wildcard subscriber", async () => a.length === 2, 5_000);
      expect(a).toEqual(["otp.events.vrf_1", "otp.events.vrf_2"]);
      expect(b).toEqual(["otp.events.vrf_1"]);
      stopA();
      stopB();
    });

    it("waits for messages in flight when a consumer stops", async () => {
      let finished = false;
      let started = false;
      await bus.publish("otp.dispatch.sms", data("slow"), { msgId: "slow" });
      const consumer = await consume(async () => {
        started = true;
        await new Promise((r) => setTimeout(r, 200));
        finished = true;
        return { kind: "ack" };
      });
      await waitFor("the handler to start", async () => started, 5_000);
      await consumer.stop();
      expect(finished).toBe(true);
    });
  });
}
