import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_ROUTES, DEFAULT_POLICIES } from "../../src/config/sandbox-catalogue.js";
import { PreconditionError, RateLimitedError } from "../../src/domain/errors.js";
import { uuidIds } from "../../src/domain/ports.js";
import type { Catalogue, ServiceDeps } from "../../src/service/deps.js";
import { sendAdmissions } from "../../src/service/send-limits.js";
import { sendOtp, unmeteredWrites, type SendOtpResult } from "../../src/service/send-otp.js";
import { openDatabase, type Db } from "../../src/store/database.js";
import { findBalance, openBalance } from "../../src/store/repositories/ledger.js";
import { sql } from "kysely";
import { migratedPostgres } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";
import { waitFor } from "../harness/free-port.js";

/**
 * SendOtp under concurrency on real PostgreSQL (PGlite runs one transaction
 * at a time: nothing here could fail there). Each limit is hit by many sends
 * at once and must let exactly its number through; a caller's sends must not
 * wait on each other's transactions. The limit races run on three "replicas"
 * (each counts the sends that arrive together in one statement), so sends are
 * counted both within a statement and by statements racing each other.
 */
describe("SendOtp under concurrency on real PostgreSQL", () => {
  let url: string;
  let db: Db;
  beforeAll(async () => {
    ({ url, db } = await migratedPostgres());
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const many = { max: 1_000_000, windowMs: 60_000 };
  const unlimited = { sendsPerCaller: many, sendsPerDestination: many, sendsPerNumberRange: many };

  /** Runs `n` sends at once; returns how many were sent and the errors of the others. */
  async function burst(n: number, send: (i: number) => Promise<SendOtpResult>): Promise<{ sent: number; errors: unknown[] }> {
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => send(i)));
    const errors = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason);
    return { sent: n - errors.length, errors };
  }

  /** The same service as three replicas would run it: each with its own admission and write statements. */
  function replicas(deps: ServiceDeps): (i: number) => ServiceDeps {
    const all = Array.from({ length: 3 }, () => ({ ...deps, sendAdmissions: sendAdmissions(db), unmeteredWrites: unmeteredWrites(db) }));
    return (i) => all[i % all.length]!;
  }

  async function windowCount(keyPrefix: string): Promise<number> {
    const rows = await db.selectFrom("rate_limit_counters").select("count").where("key", "like", `${keyPrefix}%`).execute();
    return rows.reduce((sum, r) => sum + r.count, 0);
  }

  it("lets exactly the per-destination limit through when 40 sends to one phone race, and counts only those", async () => {
    const replica = replicas(serviceDeps(db, { limits: { ...unlimited, sendsPerDestination: { max: 5, windowMs: 3_600_000 } } }));
    const phone = uniquePhone();
    const caller = { id: "race-dest" };
    const { sent, errors } = await burst(40, (i) => sendOtp(replica(i), caller, sendCommand({ destination: { phone } }), newTrace()));
    expect(sent).toBe(5);
    expect(errors.every((e) => e instanceof RateLimitedError)).toBe(true);
    expect(await windowCount("dest:race-dest:")).toBe(5);
    expect(await windowCount("caller:race-dest")).toBe(5);
  });

  it("lets exactly the per-caller limit through when 60 sends of one caller race", async () => {
    const replica = replicas(serviceDeps(db, { limits: { ...unlimited, sendsPerCaller: { max: 20, windowMs: 3_600_000 } } }));
    const caller = { id: "race-caller" };
    const { sent, errors } = await burst(60, (i) => sendOtp(replica(i), caller, sendCommand(), newTrace()));
    expect(sent).toBe(20);
    expect(errors.every((e) => e instanceof RateLimitedError)).toBe(true);
    expect(await windowCount("caller:race-caller")).toBe(20);
  });

  it("lets exactly the per-client-IP limit through when 40 sends from one IP race", async () => {
    const replica = replicas(serviceDeps(db, { limits: { ...unlimited, sendsPerClientIp: { max: 8, windowMs: 3_600_000 } } }));
    const { sent, errors } = await burst(40, (i) => sendOtp(replica(i), { id: "race-ip" }, sendCommand({ clientIp: "203.0.113.77" }), newTrace()));
    expect(sent).toBe(8);
    expect(errors.every((e) => e instanceof RateLimitedError)).toBe(true);
  });

  it("lets exactly the global per-address ceiling through when three callers race for one phone", async () => {
    const replica = replicas(serviceDeps(db, { limits: { ...unlimited, sendsPerDestinationGlobal: { max: 4, windowMs: 3_600_000 } } }));
    const phone = uniquePhone();
    const { sent, errors } = await burst(30, (i) => sendOtp(replica(i), { id: `race-global-${i % 3}` }, sendCommand({ destination: { phone } }), newTrace()));
    expect(sent).toBe(4);
    expect(errors.every((e) => e instanceof RateLimitedError)).toBe(true);
  });

  it("debits a metered caller's balance exactly to zero when 30 sends race for 7 sends' worth, and counts only the paid ones", async () => {
    const catalogue: Catalogue = { routes: SANDBOX_ROUTES.map((r) => ({ ...r, pricesMicros: { "*": 10_000 } })), policies: DEFAULT_POLICIES };
    const deps = serviceDeps(db, { limits: unlimited, catalogue });
    const caller = { id: "race-metered" };
    const price = await sendOtp(deps, { id: "price-probe" }, sendCommand(), newTrace());
    const each = price.priceQuoted.micros;
    await openBalance(db, caller.id, { currency: price.priceQuoted.currency, micros: 7 * each }, new Date());

    const { sent, errors } = await burst(30, () => sendOtp(deps, caller, sendCommand(), newTrace()));
    expect(sent).toBe(7);
    expect(errors.every((e) => e instanceof PreconditionError)).toBe(true);
    expect(await findBalance(db, caller.id)).toEqual({ currency: price.priceQuoted.currency, micros: 0 });
    const verifications = await db.selectFrom("verifications").select("id").where("caller_id", "=", caller.id).execute();
    expect(verifications).toHaveLength(7);
    expect(await windowCount("caller:race-metered")).toBe(7);
  });

  it("makes one verification of 20 racing sends with one idempotency key, counted once", async () => {
    const deps = serviceDeps(db, { limits: unlimited });
    const caller = { id: "race-idem" };
    const command = sendCommand({ idempotencyKey: "same-key" });
    const results = await Promise.all(Array.from({ length: 20 }, () => sendOtp(deps, caller, command, newTrace())));
    expect(new Set(results.map((r) => r.verification.id)).size).toBe(1);
    expect(await windowCount("caller:race-idem")).toBe(1);
  });

  it("does not make a caller's sends wait for each other's transactions", async () => {
    // A send is held inside its transaction: another session has inserted (and not committed) a
    // verification with the id the send will use, so the send's insert waits on the primary key.
    const blockedId = `vrf_blocked_${Date.now()}`;
    let handedOut = false;
    const ids = { next: (prefix: string) => (prefix === "vrf" && !handedOut ? ((handedOut = true), blockedId) : uuidIds.next(prefix)) };
    const deps = { ...serviceDeps(db, { limits: unlimited }), ids };
    const caller = { id: "no-queue" };

    const holder = await openDatabase({ kind: "postgres", url });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const inserted = new Promise<void>((resolve) => (held = resolve));
    const holding = holder.transaction().execute(async (trx) => {
      await sql`insert into verifications (id, caller_id, status, policy, destination, destination_key, code_hash, sealed_code, render, plan, max_attempts, client_reference, metadata, trace_id, created_at, expires_at)
        values (${blockedId}, 'someone', 'PENDING', 'default', '{}', 'k', 'h', 's', '{}', '[]', 5, '', '{}', 't', now(), now())`.execute(trx);
      held();
      await released;
      throw new Error("roll back");
    });
    await inserted;
    const blocked = sendOtp(deps, caller, sendCommand(), newTrace());
    await waitFor("the first send to wait on the held row", async () => (await waitingOnLocks(db)) > 0, 10_000, 10);

    // Before: every send of a caller updated its window row inside the transaction, so this one
    // waited for the blocked one to end.
    const second = await sendOtp(deps, caller, sendCommand(), newTrace());
    expect(second.verification.status).toBe("PENDING");

    release();
    await expect(holding).rejects.toThrow("roll back");
    expect((await blocked).verification.id).toBe(blockedId);
    await holder.destroy();
  });

  it("fails only the send at fault when sends written together meet an error, and writes nothing of it", async () => {
    // One of 12 sends that arrive together gets the id of a verification that already exists.
    const takenId = `vrf_taken_${Date.now()}`;
    await sql`insert into verifications (id, caller_id, status, policy, destination, destination_key, code_hash, sealed_code, render, plan, max_attempts, client_reference, metadata, trace_id, created_at, expires_at)
      values (${takenId}, 'someone', 'PENDING', 'default', '{}', 'k', 'h', 's', '{}', '[]', 5, '', '{}', 't', now(), now())`.execute(db);
    let handedOut = 0;
    const ids = { next: (prefix: string) => (prefix === "vrf" && ++handedOut === 5 ? takenId : uuidIds.next(prefix)) };
    const deps = { ...serviceDeps(db, { limits: unlimited }), ids };
    const caller = { id: "group-fault" };
    const { sent, errors } = await burst(12, () => sendOtp(deps, caller, sendCommand(), newTrace()));
    expect(sent).toBe(11);
    expect(errors).toHaveLength(1);
    expect(await db.selectFrom("verifications").select("id").where("caller_id", "=", caller.id).execute()).toHaveLength(11);
    expect(await db.selectFrom("attempts").select("id").where("verification_id", "=", takenId).execute()).toEqual([]);
    expect(await db.selectFrom("delivery_events").select("sequence").where("verification_id", "=", takenId).execute()).toEqual([]);
    // The failed send was taken back out of its windows.
    expect(await windowCount("caller:group-fault")).toBe(11);
  });
});

async function waitingOnLocks(db: Db): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
  return rows[0]!.n;
}
