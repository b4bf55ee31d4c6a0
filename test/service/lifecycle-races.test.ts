import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt } from "../../src/service/attempt-lifecycle.js";
import type { Catalogue } from "../../src/service/deps.js";
import { cancelOtp, expireDue } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { findBalance, openBalance } from "../../src/store/repositories/ledger.js";
import { lockMessageAndVerification, lockProviderMessage } from "../../src/store/repositories/parked-receipts.js";
import { inTransaction } from "../../src/store/transaction.js";
import { countingDatabase } from "../harness/counting-database.js";
import { migratedPostgres } from "../harness/databases.js";
import { FakeClock } from "../harness/fakes.js";
import { waitFor } from "../harness/free-port.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";
import { attemptHandler, CountingProvider, dispatchMessage } from "../harness/worker-fixture.js";

const priced = (channel: Route["channel"], micros: number): Route => pricedRoute(channel, micros, "priced");
const PRICED: Catalogue = { routes: [priced("sms", 72_000), priced("email", 1_000), priced("voice", 150_000), priced("push", 5)], policies: DEFAULT_POLICIES };
const PRICE_OF = new Map(PRICED.routes.map((r) => [r.id, r.pricesMicros["*"]!]));
const UNLIMITED = { sendsPerCaller: { max: 1_000_000, windowMs: 60_000 }, sendsPerNumberRange: { max: 1_000_000, windowMs: 60_000 } };
const OPENING = 1_000_000_000_000;

/** Runs `round(0..n-1)`, `parallel` at a time. */
async function rounds(n: number, parallel: number, round: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await round(next++);
    }),
  );
}

/** Awaits every operation; returns the failures instead of stopping at the first. */
async function settle(operations: Array<Promise<unknown>>): Promise<unknown[]> {
  const results = await Promise.allSettled(operations);
  return results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
}

/**
 * Races on real PostgreSQL only: PGlite runs one transaction at a time, so a
 * race there cannot happen and a test of it cannot fail.
 */
describe("attempt lifecycle under concurrency on real PostgreSQL", () => {
  let db: Db;
  let url: string;
  beforeAll(async () => {
    ({ db, url } = await migratedPostgres());
  });
  afterAll(async () => {
    await db?.destroy();
  });

  async function code(deps: ReturnType<typeof serviceDeps>, id: string): Promise<string> {
    const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", id).executeTakeFirstOrThrow();
    return deps.protector.unseal(id, row.sealed_code);
  }

  /** Every attempt of `callerId`: sent at most once, and a sent one keeps its provider id and is never canceled. */
  async function expectEachSentOnceAndRecorded(provider: CountingProvider, callerId: string, store: Db = db) {
    const attempts = await store
      .selectFrom("attempts")
      .innerJoin("verifications", "verifications.id", "attempts.verification_id")
      .select(["attempts.id", "attempts.status", "attempts.provider_message_id"])
      .where("verifications.caller_id", "=", callerId)
      .execute();
    const doubled = [...provider.calls].filter(([, n]) => n > 1);
    expect(doubled).toEqual([]);
    expect(provider.maxConcurrentPerAttempt).toBeLessThanOrEqual(1);
    const sentButLost = attempts.filter((a) => provider.calls.has(a.id) && (a.provider_message_id !== `p-${a.id}` || a.status === "CANCELED" || a.status === "QUEUED"));
    expect(sentButLost).toEqual([]);
    const recordedButNotSent = attempts.filter((a) => !provider.calls.has(a.id) && a.provider_message_id !== null);
    expect(recordedButNotSent).toEqual([]);
    return attempts;
  }

  it("VerifyOtp racing the worker's record of the same verification: no deadlock, the code is approved every time", async () => {
    const deps = serviceDeps(db, { limits: UNLIMITED });
    const caller = { id: "race-verify-worker" };
    const provider = new CountingProvider();
    const handle = attemptHandler(deps, provider);
    const errors: unknown[] = [];
    const outcomes: string[] = [];
    await rounds(300, 6, async () => {
      const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
      const message = await dispatchMessage(db, sent.firstAttempt.id);
      const correct = await code(deps, sent.verification.id);
      const [verified, ...failed] = await Promise.allSettled([verifyOtp(deps, caller, sent.verification.id, correct), handle(message)]);
      if (verified.status === "fulfilled") outcomes.push(verified.value.outcome);
      else errors.push(verified.reason);
      errors.push(...failed.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason));
    });
    expect(errors).toEqual([]);
    expect(outcomes.filter((o) => o !== "APPROVED")).toEqual([]);
    const attempts = await expectEachSentOnceAndRecorded(provider, caller.id);
    // Both orders happened: some attempts went out before the approval, some were stopped by it.
    expect(attempts.some((a) => a.status === "SUBMITTED")).toBe(true);
  });

  it("wrong codes racing around the limit: each try counted once, and the last one ends the verification with its event", async () => {
    const deps = serviceDeps(db, { limits: UNLIMITED });
    const caller = { id: "race-wrong-codes" };
    const CALLS = 8;
    const errors: unknown[] = [];
    const remainders: number[][] = [];
    await rounds(100, 4, async () => {
      const { verification } = await sendOtp(deps, caller, sendCommand({ destination: { phone: uniquePhone() } }), newTrace());
      const wrong = (await code(deps, verification.id)) === "000000" ? "111111" : "000000";
      const results = await Promise.allSettled(Array.from({ length: CALLS }, () => verifyOtp(deps, caller, verification.id, wrong)));
      errors.push(...results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason));
      const values = results.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<{ outcome: string; remainingAttempts: number }>).value);
      remainders.push(values.filter((v) => v.outcome === "WRONG_CODE").map((v) => v.remainingAttempts).sort());
      expect(values.filter((v) => v.outcome !== "WRONG_CODE").map((v) => v.outcome)).toEqual(Array(CALLS - 5).fill("MAX_ATTEMPTS"));
    });
    expect(errors).toEqual([]);
    // Five tries each, one per call, counted down in order.
    expect(remainders.filter((r) => r.join() !== "0,1,2,3,4")).toEqual([]);
    const ended = await db
      .selectFrom("verifications")
      .select((eb) => [
        "verifications.id",
        "verifications.status",
        "verifications.failed_attempts",
        eb.selectFrom("delivery_events").whereRef("delivery_events.verification_id", "=", "verifications.id").where("kind", "=", "MAX_ATTEMPTS").select(eb.fn.countAll<string>().as("n")).as("endings"),
        eb.selectFrom("attempts").whereRef("attempts.verification_id", "=", "verifications.id").where("status", "<>", "CANCELED").select(eb.fn.countAll<string>().as("n")).as("uncanceled"),
      ])
      .where("caller_id", "=", caller.id)
      .execute();
    expect(ended).toHaveLength(100);
    // The last try ended each one: its MAX_ATTEMPTS event written once, and its unsent SMS stopped.
    expect(ended.filter((v) => v.status !== "MAX_ATTEMPTS" || v.failed_attempts !== 5 || Number(v.endings) !== 1 || Number(v.uncanceled) !== 0)).toEqual([]);
  });

  it("receipts racing the worker's record of their provider ids, each sent twice: every one applied once, none lost, no deadlock", async () => {
    // A database of its own: its 400 delivered codes fall due for fallback later, and other tests drain every due plan.
    const own = await migratedPostgres();
    const counting = await countingDatabase(own.url);
    const db = own.db;
    try {
      const deps = serviceDeps(counting.db, { limits: UNLIMITED });
      const caller = { id: "race-receipts" };
      const outcomes: Array<Promise<string>> = [];
      const receiptOf = (providerMessageId: string) => () => applyReceipt(deps, { provider: "sandbox", providerMessageId, status: "DELIVERED", occurredAt: deps.clock.now() });
      // Two receipts per message, from the moment the provider accepts it: one at once, one a few milliseconds later,
      // so they land before, during and after the worker's record of the id, and side by side.
      const provider = new CountingProvider((_message, providerMessageId) => {
        const receipt = receiptOf(providerMessageId);
        outcomes.push(receipt());
        outcomes.push(new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 4))).then(receipt));
      });
      const handle = attemptHandler(deps, provider);
      const errors: unknown[] = [];
      counting.reset();
      await rounds(400, 8, async () => {
        const sent = await sendOtp(deps, caller, sendCommand(), newTrace());
        errors.push(...(await settle([handle(await dispatchMessage(db, sent.firstAttempt.id))])));
      });
      const settled = await Promise.allSettled(outcomes);
      errors.push(...settled.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason));

      expect(errors).toEqual([]);
      // Not even a deadlock that a retry hid: the locks are taken in one order.
      expect(counting.refusals()).toEqual([]);
      const attempts = await expectEachSentOnceAndRecorded(provider, caller.id, db);
      expect(attempts).toHaveLength(400);
      expect(attempts.filter((a) => a.status !== "DELIVERED")).toEqual([]);
      const delivered = await db.selectFrom("delivery_events").select("attempt_id").where("kind", "=", "ATTEMPT_DELIVERED").where("attempt_id", "in", attempts.map((a) => a.id)).execute();
      expect(delivered).toHaveLength(400);
      expect(await db.selectFrom("parked_receipts").select("provider_message_id").where("provider_message_id", "in", attempts.map((a) => `p-${a.id}`)).execute()).toEqual([]);
      // Both orders happened: receipts parked before the record, and receipts applied after it.
      const seen = new Set(settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])));
      expect([...seen].sort()).toEqual(["applied", "parked", "unchanged"]);
    } finally {
      await counting.db.destroy();
      await db.destroy();
    }
  });

  it("a submission waiting for its message id's lock holds no lock on the verification meanwhile (the lock order)", async () => {
    // A database of its own, as above: its code falls due for fallback later.
    const { db } = await migratedPostgres();
    const deps = serviceDeps(db, { limits: UNLIMITED });
    const id = (await sendOtp(deps, { id: "race-lock-order" }, sendCommand(), newTrace())).verification.id;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    // A receipt's transaction holding the message id's lock.
    const receipt = inTransaction(db, async ({ trx }) => {
      await lockProviderMessage(trx, "sandbox", "p-lock-order");
      held();
      await released;
    });
    await holding;
    const submission = inTransaction(db, ({ trx }) => lockMessageAndVerification(trx, "sandbox", "p-lock-order", id));
    try {
      await waitFor("the submission waiting for the id's lock", async () => {
        // pg_locks is the whole server's: only this test's database counts.
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
          where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`.execute(db);
        return rows[0]!.n === 1;
      }, 10_000, 10);
      // Meanwhile the verification is anyone's: NOWAIT would fail at once if the submission held it.
      const other = await inTransaction(db, async ({ trx }) => sql<{ id: string }>`select id from verifications where id = ${id} for no key update nowait`.execute(trx));
      expect(other.rows).toEqual([{ id }]);
    } finally {
      release();
    }
    await receipt;
    expect((await submission)?.id).toBe(id);
    await db.destroy();
  });

  it("four expiry sweeps at once over codes of two metered callers, each with its SMS unsent: no deadlock, each refunded once", async () => {
    const counting = await countingDatabase(url);
    try {
      const deps = serviceDeps(counting.db, { limits: UNLIMITED, catalogue: PRICED });
      const [a, b] = [{ id: "sweep-race-a" }, { id: "sweep-race-b" }];
      for (const caller of [a, b]) await openBalance(db, caller.id, { currency: "EUR", micros: OPENING }, deps.clock.now());
      // Expiring in the order a b b a a b b a …: with batches of two, sweeps side by side hold (a, b) and (b, a).
      for (let i = 0; i < 120; i++) {
        await sendOtp(deps, i % 4 === 0 || i % 4 === 3 ? a : b, sendCommand({ ttlMs: 60_000 }), newTrace());
        deps.clock.advance(1);
      }
      const later = { ...deps, clock: new FakeClock(deps.clock.now().getTime() + 60_000) };
      counting.reset();
      const swept = await Promise.all(
        Array.from({ length: 4 }, async () => {
          let ended = 0;
          for (let n; (n = await expireDue(later, 2)) > 0; ) ended += n;
          return ended;
        }),
      );
      expect(swept.reduce((x, y) => x + y, 0)).toBe(120);
      expect(counting.refusals()).toEqual([]);
      for (const caller of [a, b]) expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: OPENING });
      const refunds = await db.selectFrom("ledger_entries").select("attempt_id").where("caller_id", "in", [a.id, b.id]).where("kind", "=", "refund").execute();
      expect(refunds).toHaveLength(120);
    } finally {
      await counting.db.destroy();
    }
  });

  it("three schedulers draining 600 due plans of six metered callers at once: each plan escalated once, each charge exact", async () => {
    const deps = serviceDeps(db, { limits: UNLIMITED, catalogue: PRICED });
    const later = { ...deps, clock: new FakeClock(deps.clock.now().getTime() + 15_000) };
    const callers = Array.from({ length: 6 }, (_, i) => ({ id: `drain-${i}` }));
    for (const caller of callers) await openBalance(db, caller.id, { currency: "EUR", micros: OPENING }, deps.clock.now());
    const ids: string[] = [];
    await rounds(600, 8, async (i) => {
      const destination = { phone: uniquePhone(), email: `drain${i}@example.com` };
      ids.push((await sendOtp(deps, callers[i % 6]!, sendCommand({ destination }), newTrace())).verification.id);
    });

    const handled = await Promise.all([advanceDuePlans(later, 1_000), advanceDuePlans(later, 1_000), advanceDuePlans(later, 1_000)]);
    expect(handled.reduce((a, b) => a + b, 0)).toBe(600);

    const attempts = await db.selectFrom("attempts").select(["verification_id", "channel", "status"]).where("verification_id", "in", ids).execute();
    const channels = new Map<string, string[]>();
    for (const a of attempts) channels.set(a.verification_id, [...(channels.get(a.verification_id) ?? []), `${a.channel} ${a.status}`]);
    const wrong = [...channels].filter(([, c]) => c.sort().join(",") !== "email QUEUED,sms CANCELED");
    expect(wrong).toEqual([]);
    const fallbacks = await db.selectFrom("delivery_events").select("verification_id").where("kind", "=", "FALLBACK_TRIGGERED").where("verification_id", "in", ids).execute();
    expect(fallbacks).toHaveLength(600);
    // Each SMS step refunded when it was superseded unsent, each email step charged once.
    for (const caller of callers) {
      expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: OPENING - 100 * PRICE_OF.get("priced-email")! });
    }
  });

  it("verify, cancel, expiry, escalation, duplicate deliveries and receipts all at once: no error, no double send, the ledger exact", async () => {
    const deps = serviceDeps(db, { limits: UNLIMITED, catalogue: PRICED });
    const later = { ...deps, clock: new FakeClock(deps.clock.now().getTime() + 15_000) };
    const expired = { ...deps, clock: new FakeClock(deps.clock.now().getTime() + 11 * 60_000) };
    const caller = { id: "race-everything" };
    await openBalance(db, caller.id, { currency: "EUR", micros: OPENING }, deps.clock.now());
    const receipts: Array<Promise<unknown>> = [];
    const provider = new CountingProvider((message, providerMessageId) => {
      const status = Math.random() < 0.5 ? "DELIVERED" : "UNDELIVERED";
      receipts.push(applyReceipt(deps, { provider: "sandbox", providerMessageId, status, occurredAt: deps.clock.now() }));
    });
    const handle = attemptHandler(deps, provider, { routes: PRICED.routes });
    const errors: unknown[] = [];
    const queuedOf = async (id: string) =>
      (await db.selectFrom("attempts").select("id").where("verification_id", "=", id).where("status", "=", "QUEUED").execute()).map((a) => a.id);

    await rounds(2_000, 8, async (i) => {
      const destination = { phone: uniquePhone(), email: `race${i}@example.com`, pushToken: `tok-${i}` };
      const sent = await sendOtp(deps, caller, sendCommand({ destination }), newTrace());
      const id = sent.verification.id;
      const correct = await code(deps, id);
      const first = await dispatchMessage(db, sent.firstAttempt.id);
      const chance = () => Math.random();
      // The worker and a redelivery of the same message, racing whatever else this round does.
      const operations: Array<Promise<unknown>> = [handle(first), handle({ ...first, deliveryCount: 2 })];
      if (chance() < 0.6) operations.push(verifyOtp(deps, caller, id, chance() < 0.5 ? correct : "000000"));
      if (chance() < 0.25) operations.push(cancelOtp(deps, caller, id));
      if (chance() < 0.5) operations.push(advanceDuePlans(later, 4));
      if (chance() < 0.1) operations.push(expireDue(expired, 4));
      errors.push(...(await settle(operations)));
      // Whatever the fallback queued meanwhile goes out now, racing the right code.
      const next = await Promise.all((await queuedOf(id)).map((attemptId) => dispatchMessage(db, attemptId)));
      errors.push(...(await settle([...next.map((m) => handle(m)), verifyOtp(deps, caller, id, correct)])));
    });
    // Attempts another round's escalation queued after this round looked: send them too.
    for (const attempt of await db.selectFrom("attempts").select("id").where("status", "=", "QUEUED").execute()) {
      errors.push(...(await settle([handle(await dispatchMessage(db, attempt.id))])));
    }
    errors.push(...(await settle(receipts)));

    expect(errors).toEqual([]);
    const attempts = await expectEachSentOnceAndRecorded(provider, caller.id);
    // Charged exactly for what reached a provider; everything else refunded, once.
    const rows = await db.selectFrom("attempts").select(["id", "route_id", "submitted_at"]).where("id", "in", attempts.map((a) => a.id)).execute();
    const charged = rows.filter((a) => a.submitted_at !== null).reduce((sum, a) => sum + PRICE_OF.get(a.route_id)!, 0);
    expect(await findBalance(db, caller.id)).toEqual({ currency: "EUR", micros: OPENING - charged });
    const refunds = await db.selectFrom("ledger_entries").select("attempt_id").where("caller_id", "=", caller.id).where("kind", "=", "refund").execute();
    expect(new Set(refunds.map((r) => r.attempt_id))).toEqual(new Set(rows.filter((a) => a.submitted_at === null).map((a) => a.id)));
    // A pending verification's current step is never one whose attempt was canceled under it.
    const orphaned = await db
      .selectFrom("verifications")
      .innerJoin("attempts", (join) => join.onRef("attempts.verification_id", "=", "verifications.id").onRef("attempts.step_index", "=", "verifications.current_step"))
      .select("verifications.id")
      .where("verifications.caller_id", "=", caller.id)
      .where("verifications.status", "=", "PENDING")
      .where("attempts.status", "=", "CANCELED")
      .execute();
    expect(orphaned).toEqual([]);
    // Every event numbered without a gap, whatever raced to write it.
    const gaps = await db
      .selectFrom("verifications")
      .leftJoin("delivery_events", "delivery_events.verification_id", "verifications.id")
      .select(["verifications.id", "verifications.event_seq"])
      .select((eb) => [eb.fn.count<number>("delivery_events.sequence").as("events"), eb.fn.max("delivery_events.sequence").as("last")])
      .where("verifications.caller_id", "=", caller.id)
      .groupBy(["verifications.id", "verifications.event_seq"])
      .having((eb) => eb.or([eb(eb.fn.count("delivery_events.sequence"), "!=", eb.ref("verifications.event_seq")), eb(eb.fn.max("delivery_events.sequence"), "!=", eb.ref("verifications.event_seq"))]))
      .execute();
    expect(gaps).toEqual([]);
    // 2,000 rounds take 20–30 s on two busy cores: the limit is there to catch a hang, not to time it.
  }, 120_000);
});
