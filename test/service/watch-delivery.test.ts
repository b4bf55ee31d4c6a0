import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeliveryEvent } from "../../src/domain/delivery-event.js";
import { NotFoundError, UnavailableError } from "../../src/domain/errors.js";
import { cryptoRandom } from "../../src/domain/ports.js";
import { eventFromRow } from "../../src/service/events.js";
import { listDeliveryEvents } from "../../src/store/repositories/delivery-events.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import { keepAlivePeriod, watchDelivery, type EventFeed, type WatchItem } from "../../src/service/watch-delivery.js";
import type { Db } from "../../src/store/database.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

/** A live feed that loses every message whose kind is in `drops` (core NATS is at most once). */
class LossyFeed implements EventFeed {
  private readonly listeners = new Set<(event: DeliveryEvent) => void>();
  constructor(private readonly drops: ReadonlySet<string>) {}
  subscribe(_id: string, listener: (event: DeliveryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  get subscribers(): number {
    return this.listeners.size;
  }
  private published = 0;
  /** Hands the verification's stored events not yet published to the listeners, as the outbox relay would. */
  async relay(db: Db, verificationId: string): Promise<void> {
    for (const event of (await listDeliveryEvents(db, verificationId, this.published)).map(eventFromRow)) {
      this.published = event.sequence;
      if (!this.drops.has(event.kind)) for (const listener of this.listeners) listener(event);
    }
  }
}

const caller = { id: "watcher" };
const KEEP_ALIVE_MS = 50;

describe.each(BACKENDS)("WatchDelivery on $name with a feed that drops messages", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  /** Runs a watcher until its stream ends (or 10 s pass, which fails the test). */
  async function watchToEnd(deps: ReturnType<typeof serviceDeps>, feed: EventFeed, id: string, started: () => void): Promise<WatchItem[]> {
    const items: WatchItem[] = [];
    const signal = AbortSignal.timeout(10_000);
    for await (const item of watchDelivery(deps, feed, caller, id, 0, signal, KEEP_ALIVE_MS)) {
      items.push(item);
      if (item.kind === "keep-alive") started();
    }
    expect(signal.aborted).toBe(false);
    return items;
  }

  it.each([
    ["the final VERIFIED event", new Set(["VERIFIED"])],
    ["every event", new Set(["VERIFICATION_CREATED", "ATTEMPT_QUEUED", "VERIFIED"])],
    ["nothing", new Set<string>()],
  ])("still delivers every stored event in order, ending with the final one, when the feed drops %s", async (_, drops) => {
    const deps = serviceDeps(db);
    const feed = new LossyFeed(drops);
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    await feed.relay(db, sent.verification.id);
    let watching!: () => void;
    const idle = new Promise<void>((resolve) => (watching = resolve));
    const stream = watchToEnd(deps, feed, sent.verification.id, watching);
    await idle; // the watcher has caught up and is waiting on the live feed
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", sent.verification.id).executeTakeFirstOrThrow();
    expect((await verifyOtp(deps, caller, sent.verification.id, deps.protector.unseal(sent.verification.id, row.sealed_code))).outcome).toBe("APPROVED");
    await feed.relay(db, sent.verification.id);
    const events = (await stream).filter((i) => i.kind === "event").map((i) => (i as { event: DeliveryEvent }).event);
    expect(events.map((e) => e.kind)).toEqual(["VERIFICATION_CREATED", "ATTEMPT_QUEUED", "VERIFIED"]);
    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3]);
  });

  it("answers not found for another caller's verification, and leaves no subscription behind", async () => {
    const deps = serviceDeps(db);
    const feed = new LossyFeed(new Set());
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const stranger = watchDelivery(deps, feed, { id: "stranger" }, sent.verification.id, 0, AbortSignal.timeout(10_000), KEEP_ALIVE_MS);
    await expect(stranger.next()).rejects.toBeInstanceOf(NotFoundError);
    expect(feed.subscribers).toBe(0);
  });

  it("streams opened together each start from their own verification and sequence; strangers and unknown ids among them get NOT_FOUND", async () => {
    const deps = serviceDeps(db);
    const feed = new LossyFeed(new Set());
    const [a, b] = await Promise.all([sendOtp(deps, caller, sendCommand(), newTrace()), sendOtp(deps, caller, sendCommand(), newTrace())]);
    /** The first `count` events of a stream, as (verification, sequence). */
    const first = async (who: { id: string }, id: string, after: number, count: number) => {
      const seen: string[] = [];
      for await (const item of watchDelivery(deps, feed, who, id, after, AbortSignal.timeout(10_000), KEEP_ALIVE_MS)) {
        if (item.kind === "event") seen.push(`${item.event.verificationId === a.verification.id ? "a" : "b"}${item.event.sequence}`);
        if (seen.length === count) return seen;
      }
      return seen;
    };
    // All opened in the same turn: one group, read together.
    const opened = await Promise.allSettled([
      first(caller, a.verification.id, 0, 2),
      first({ id: "stranger" }, a.verification.id, 0, 1),
      first(caller, b.verification.id, 1, 1),
      first(caller, "no-such-verification", 0, 1),
      first(caller, a.verification.id, 1, 1),
    ]);
    expect(opened.map((r) => (r.status === "fulfilled" ? r.value : r.reason instanceof NotFoundError ? "not found" : r.reason))).toEqual([
      ["a1", "a2"],
      "not found",
      ["b2"],
      "not found",
      ["a2"],
    ]);
    expect(feed.subscribers).toBe(0);
  });

  it("ends with a MAX_ATTEMPTS event when the wrong-code limit is reached", async () => {
    const deps = serviceDeps(db, { limits: { maxWrongCodes: 2 } });
    const feed = new LossyFeed(new Set());
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    await feed.relay(db, sent.verification.id);
    let watching!: () => void;
    const idle = new Promise<void>((resolve) => (watching = resolve));
    const stream = watchToEnd(deps, feed, sent.verification.id, watching);
    await idle;
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", sent.verification.id).executeTakeFirstOrThrow();
    const wrong = deps.protector.unseal(sent.verification.id, row.sealed_code) === "000000" ? "111111" : "000000";
    expect((await verifyOtp(deps, caller, sent.verification.id, wrong)).outcome).toBe("WRONG_CODE");
    expect((await verifyOtp(deps, caller, sent.verification.id, wrong)).outcome).toBe("WRONG_CODE");
    await feed.relay(db, sent.verification.id);
    const kinds = (await stream).filter((i) => i.kind === "event").map((i) => (i as { event: DeliveryEvent }).event.kind);
    expect(kinds.at(-1)).toBe("MAX_ATTEMPTS");
  });

  it("fails with the abort's reason when stopped before the final event, so the client knows to resume", async () => {
    const deps = serviceDeps(db);
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const stop = new AbortController();
    const items: WatchItem[] = [];
    const reason = new UnavailableError("shutting down");
    const stream = (async () => {
      for await (const item of watchDelivery(deps, new LossyFeed(new Set()), caller, sent.verification.id, 0, stop.signal, KEEP_ALIVE_MS)) {
        items.push(item);
        if (item.kind === "keep-alive") stop.abort(reason);
      }
    })();
    await expect(stream).rejects.toBe(reason);
    expect(items.filter((i) => i.kind === "event").map((i) => (i as { event: DeliveryEvent }).event.sequence)).toEqual([1, 2]);
  });
});

describe("keep-alive periods", () => {
  it("are spread over the last quarter of the keep-alive interval, so streams opened together do not read the store together", () => {
    const periods = Array.from({ length: 1_000 }, () => keepAlivePeriod(15_000, cryptoRandom));
    expect(Math.min(...periods)).toBeGreaterThanOrEqual(11_250);
    expect(Math.max(...periods)).toBeLessThanOrEqual(15_000);
    // 5,000 streams opened at once: their first store reads spread over seconds, not one instant.
    expect(Math.max(...periods) - Math.min(...periods)).toBeGreaterThan(3_000);
    expect(new Set(periods).size).toBeGreaterThan(500);
  });
});
