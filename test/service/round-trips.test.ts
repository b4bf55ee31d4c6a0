import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { OutboxPublisher } from "../../src/dispatch/outbox-publisher.js";
import { applyReceipt } from "../../src/service/attempt-lifecycle.js";
import { cancelOtp, expireDue, getVerification } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import { watchDelivery, type EventFeed } from "../../src/service/watch-delivery.js";
import type { Db } from "../../src/store/database.js";
import { openBalance } from "../../src/store/repositories/ledger.js";
import type { OutboxMessage } from "../../src/store/repositories/outbox.js";
import { countingDatabase, type CountingDatabase } from "../harness/counting-database.js";
import { FakeClock } from "../harness/fakes.js";
import { migratedPostgres } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";
import { attemptHandler, CountingProvider, dispatchMessage } from "../harness/worker-fixture.js";

/**
 * Statements per call, counted where they leave for PostgreSQL (BEGIN and
 * COMMIT included): on a network, each is a round trip the caller waits for.
 */
describe("round trips to PostgreSQL per call", () => {
  let db: Db;
  let counting: CountingDatabase;
  beforeAll(async () => {
    const fresh = await migratedPostgres();
    db = fresh.db;
    counting = await countingDatabase(fresh.url);
  });
  afterAll(async () => {
    await counting?.db.destroy();
    await db?.destroy();
  });

  const unlimited = { sendsPerCaller: { max: 1_000_000, windowMs: 60_000 }, sendsPerNumberRange: { max: 1_000_000, windowMs: 60_000 } };

  async function statementsOf(call: () => Promise<unknown>): Promise<number> {
    counting.reset();
    await call();
    return counting.statements();
  }

  /** A live feed that never delivers: the WatchDelivery streams below see only what they read from the store. */
  const silent: EventFeed = { subscribe: () => () => {} };

  /** `n` verifications of `caller`, each with its two stored events (created, first attempt queued). */
  async function verificationsOf(deps: ReturnType<typeof serviceDeps>, caller: { id: string }, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await sendOtp(deps, caller, sendCommand(), newTrace())).verification.id);
    return ids;
  }

  it("SendOtp: 2 (its limits, its write), or 5 with an idempotency key by a metered caller", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    await openBalance(db, "trips-metered", { currency: "EUR", micros: 1_000_000_000 }, new Date());
    await sendOtp(deps, { id: "trips-warm" }, sendCommand(), newTrace()); // the pool's connections opened

    expect(await statementsOf(() => sendOtp(deps, { id: "trips-plain" }, sendCommand(), newTrace()))).toBeLessThanOrEqual(2);
    expect(await statementsOf(() => sendOtp(deps, { id: "trips-metered" }, sendCommand(), newTrace()))).toBeLessThanOrEqual(2);
    expect(await statementsOf(() => sendOtp(deps, { id: "trips-metered" }, sendCommand({ idempotencyKey: "trips-1" }), newTrace()))).toBeLessThanOrEqual(5);
  });

  it("SendOtp: sends that arrive together share their statements (limits and, for an unmetered caller, the write)", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    await sendOtp(deps, { id: "trips-warm" }, sendCommand(), newTrace());
    const together = (callerId: string) => statementsOf(() => Promise.all(Array.from({ length: 20 }, () => sendOtp(deps, { id: callerId }, sendCommand(), newTrace()))));
    // One turn's 20 sends: one admission statement and one write (each send alone would be 40 statements).
    expect(await together("trips-together")).toBe(2);
    // A metered caller's sends share their admission; each is written alone, its debit deciding whether it is.
    expect(await together("trips-metered")).toBe(21);
    const written = await db.selectFrom("verifications").select((eb) => eb.fn.countAll<number>().as("n")).where("caller_id", "=", "trips-together").executeTakeFirstOrThrow();
    expect(Number(written.n)).toBe(20);
    // Not left due for the scheduler's batch below.
    await db.updateTable("verifications").set({ next_step_at: null }).where("caller_id", "in", ["trips-together", "trips-metered"]).execute();
  });

  it("VerifyOtp: 2 for a wrong code and for the right one; the last wrong code, which ends the verification, at most 7", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-verify" };
    const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
    const id = sent.verification.id;
    const codeOf = async (verificationId: string) => {
      const sealed = await db.selectFrom("verifications").select("sealed_code").where("id", "=", verificationId).executeTakeFirstOrThrow();
      return deps.protector.unseal(verificationId, sealed.sealed_code);
    };
    const code = await codeOf(id);
    // The first attempt stays QUEUED but its call has "started", as when the SMS is on its way: nothing to cancel.
    await db.updateTable("attempts").set({ submit_started_at: new Date() }).where("verification_id", "=", id).execute();

    const wrong = code === "000000" ? "111111" : "000000";
    expect(await statementsOf(() => verifyOtp(deps, caller, id, wrong))).toBe(2);
    expect(await statementsOf(() => verifyOtp(deps, caller, id, code))).toBe(2);
    expect((await verifyOtp(deps, caller, id, code)).outcome).toBe("ALREADY_APPROVED");

    const last = (await sendOtp(deps, caller, sendCommand(), newTrace())).verification.id;
    const wrongForLast = (await codeOf(last)) === "000000" ? "111111" : "000000";
    for (let i = 0; i < 4; i++) await verifyOtp(deps, caller, last, wrongForLast);
    expect(await statementsOf(() => verifyOtp(deps, caller, last, wrongForLast))).toBeLessThanOrEqual(7);
    expect((await getVerification(deps, caller, last)).verification.status).toBe("MAX_ATTEMPTS");
  });

  it("the fallback scheduler: a batch of 40 plans of a metered caller moved on in at most 8, whatever the batch's size", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-scheduler" };
    await openBalance(db, caller.id, { currency: "EUR", micros: 1_000_000_000 }, deps.clock.now());
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push((await sendOtp(deps, caller, sendCommand({ destination: { phone: `+3161${String(i).padStart(7, "0")}`, email: `trips${i}@example.com` } }), newTrace())).verification.id);
    deps.clock.advance(15_000);

    // BEGIN, the claim, the plans' attempts, the address locks, the balances, the debits to refund, the writes, COMMIT.
    expect(await statementsOf(() => advanceDuePlans(deps, 50))).toBeLessThanOrEqual(8);
    const moved = await db.selectFrom("attempts").select("verification_id").where("verification_id", "in", ids).where("channel", "=", "email").execute();
    expect(moved).toHaveLength(40);
  });

  it("the expiry sweep: a batch of 40 expired verifications ended in at most 4, whatever the batch's size", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push((await sendOtp(deps, { id: "trips-expiry" }, sendCommand({ ttlMs: 60_000 }), newTrace())).verification.id);
    // Their codes went out (the usual expiry: nobody typed it), so there is nothing to cancel.
    await db.updateTable("attempts").set({ status: "SUBMITTED", submit_started_at: deps.clock.now() }).where("verification_id", "in", ids).execute();
    deps.clock.advance(60_000);

    // BEGIN, the claim, the write (statuses, events, outbox, unsent attempts canceled), COMMIT.
    expect(await statementsOf(() => expireDue(deps))).toBeLessThanOrEqual(4);
    const expired = await db.selectFrom("verifications").select("id").where("id", "in", ids).where("status", "=", "EXPIRED").execute();
    expect(expired).toHaveLength(40);
  });

  it("GetVerification: 1 (the verification, its attempts and events together); CancelOtp: 5 (4 to end it, 1 to answer)", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-cancel" };
    const id = (await sendOtp(deps, caller, sendCommand(), newTrace())).verification.id;
    expect(await statementsOf(() => getVerification(deps, caller, id))).toBe(1);
    // Its SMS on its way, as usual: nothing to cancel and refund (a refund is one statement more).
    await db.updateTable("attempts").set({ submit_started_at: new Date() }).where("verification_id", "=", id).execute();
    // BEGIN, the verification's lock, one write (its status, event and message), COMMIT, and the answer.
    expect(await statementsOf(() => cancelOtp(deps, caller, id))).toBeLessThanOrEqual(5);
    expect((await getVerification(deps, caller, id)).verification.status).toBe("CANCELED");
  });

  it("a complete flow: the worker's send at most 5, its receipt at most 4 (where the flows' time goes, see BENCHMARKS.md)", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const sent = await sendOtp(deps, { id: "trips-flow" }, sendCommand(), newTrace());
    const provider = new CountingProvider();
    const message = await dispatchMessage(db, sent.firstAttempt.id);

    // The claim (verification and attempt locked, intent recorded, the attempt read back: one statement);
    // the provider call; the submission (BEGIN, the message id's lock and then the verification's in one statement,
    // one write: the attempt, its event, parked receipts taken; COMMIT).
    expect(await statementsOf(() => attemptHandler(deps, provider)(message))).toBeLessThanOrEqual(5);
    expect(provider.calls.get(sent.firstAttempt.id)).toBe(1);
    // The receipt, after the submission: BEGIN, the attempt found by its id with its verification's lock, one write
    // (the attempt's status, its route's outcome, its event and message), COMMIT.
    const receipt = { provider: "sandbox", providerMessageId: `p-${sent.firstAttempt.id}`, status: "DELIVERED" as const, occurredAt: deps.clock.now() };
    expect(await statementsOf(() => applyReceipt(deps, receipt))).toBeLessThanOrEqual(4);
    // A failure also brings the plan's next step forward: one statement more.
    const failing = await sendOtp(deps, { id: "trips-flow" }, sendCommand(), newTrace());
    await attemptHandler(deps, provider)(await dispatchMessage(db, failing.firstAttempt.id));
    const failure = { provider: "sandbox", providerMessageId: `p-${failing.firstAttempt.id}`, status: "UNDELIVERED" as const, occurredAt: deps.clock.now() };
    expect(await statementsOf(() => applyReceipt(deps, failure))).toBeLessThanOrEqual(5);
  });

  it("WatchDelivery: a stream opens with one statement, its verification and stored events together", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-watch-open" };
    const id = (await sendOtp(deps, caller, sendCommand(), newTrace())).verification.id;
    const sequences: number[] = [];
    const opened = await statementsOf(async () => {
      for await (const item of watchDelivery(deps, silent, caller, id, 0, AbortSignal.timeout(10_000), 10_000)) {
        if (item.kind === "event") sequences.push(item.event.sequence);
        if (sequences.length === 2) return;
      }
    });
    expect(sequences).toEqual([1, 2]);
    expect(opened).toBe(1);
  });

  it("WatchDelivery: streams that open together share their opening statement", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-watch-burst" };
    const ids = await verificationsOf(deps, caller, 50);
    const opened = await statementsOf(() =>
      Promise.all(
        ids.map(async (id) => {
          for await (const item of watchDelivery(deps, silent, caller, id, 0, AbortSignal.timeout(10_000), 10_000)) {
            if (item.kind === "event" && item.event.sequence === 2) return;
          }
        }),
      ),
    );
    // One statement each would be 50.
    expect(opened).toBe(1);
  });

  it("WatchDelivery: the keep-alives of idle streams share their store checks", async () => {
    const deps = serviceDeps(counting.db, { limits: unlimited });
    const caller = { id: "trips-watch" };
    const ids = await verificationsOf(deps, caller, 50);
    let caughtUp = 0;
    let allCaughtUp!: () => void;
    const watching = new Promise<void>((resolve) => (allCaughtUp = resolve));
    const watchers = ids.map(async (id) => {
      let keepAlives = 0;
      for await (const item of watchDelivery(deps, silent, caller, id, 0, AbortSignal.timeout(10_000), 400)) {
        // Its two stored events read: from here on the stream is idle.
        if (item.kind === "event" && item.event.sequence === 2 && ++caughtUp === ids.length) allCaughtUp();
        if (item.kind === "keep-alive" && ++keepAlives === 2) return;
      }
    });
    await watching;
    counting.reset();
    await Promise.all(watchers);
    // 100 keep-alives, each checking the store: one statement each would be 100.
    expect(counting.statements()).toBeLessThanOrEqual(20);
  });

  it("publishing: the messages of sends committed together are marked published by one statement (after the calls)", async () => {
    const bus = new MemoryBus({ workQueueSubjects: [] });
    const publisher = new OutboxPublisher(counting.db, bus, new FakeClock());
    // The sends on the uncounted database: only the publisher's statements are counted.
    const handed: string[] = [];
    const onOutboxWritten = (messages: readonly OutboxMessage[]) => {
      handed.push(...messages.map((m) => m.msgId));
      publisher.publishCommitted(messages);
    };
    const deps = { ...serviceDeps(db, { limits: unlimited }), onOutboxWritten };
    await sendOtp(deps, { id: "trips-warm" }, sendCommand(), newTrace());
    await publisher.settled();

    const sent = await statementsOf(async () => {
      const sends = await Promise.all(Array.from({ length: 20 }, () => sendOtp(deps, { id: "trips-publish" }, sendCommand(), newTrace())));
      await publisher.settled();
      return sends;
    });
    expect(sent).toBe(1);
    expect(handed).toHaveLength(21 * 3); // the warm-up and the 20: each send's two events and its dispatch
    const unpublished = await db.selectFrom("outbox").select("msg_id").where("msg_id", "in", handed).where("published_at", "is", null).execute();
    expect(unpublished).toEqual([]);
  });
});
