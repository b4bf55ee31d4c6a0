import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guardKeysFor } from "../../src/service/address-guards.js";
import { DEFAULT_RETENTION, pruneOnce } from "../../src/service/retention.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { openBalance } from "../../src/store/repositories/ledger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const DAY = 86_400_000;

describe.each(BACKENDS)("retention on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const count = async (table: "verifications" | "attempts" | "delivery_events" | "outbox" | "rate_limit_counters" | "idempotency_keys" | "ledger_entries", ids?: string[]) => {
    let query = db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as("n"));
    if (ids && (table === "attempts" || table === "delivery_events")) query = query.where("verification_id", "in", ids);
    if (ids && table === "verifications") query = query.where("id", "in", ids);
    return Number((await query.executeTakeFirstOrThrow()).n);
  };

  it("deletes, in bounded batches, what is past its window and keeps what is not: published outbox, counters, ended verifications with their attempts and events, idempotency keys", async () => {
    const deps = serviceDeps(db);
    const caller = { id: "retained" };
    await openBalance(db, caller.id, { currency: "EUR", micros: 1_000 }, deps.clock.now());
    const send = (key: string) => sendOtp(deps, caller, sendCommand({ idempotencyKey: key }), newTrace());
    const approve = async (id: string) => {
      const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", id).executeTakeFirstOrThrow();
      expect((await verifyOtp(deps, caller, id, deps.protector.unseal(id, row.sealed_code))).outcome).toBe("APPROVED");
    };
    // Three verifications that ended 31 days ago, their outbox rows published then.
    const old = [];
    for (const key of ["a", "b", "c"]) {
      const sent = await send(key);
      await approve(sent.verification.id);
      old.push(sent.verification.id);
    }
    await db.updateTable("outbox").set({ published_at: deps.clock.now() }).execute();
    deps.clock.advance(31 * DAY);
    // One ended today, one still pending (its outbox rows unpublished: the relay has not run).
    const recent = (await send("d")).verification.id;
    await approve(recent);
    const pending = (await send("e")).verification.id;
    const ledger = await count("ledger_entries");

    const rounds = [];
    for (let round = 0; round < 10; round++) {
      const result = await pruneOnce(db, deps.clock, DEFAULT_RETENTION, 2);
      rounds.push(result.more);
      if (!result.more) break;
    }
    expect(rounds[0]).toBe(true); // more than one batch's worth was due
    expect(rounds.at(-1)).toBe(false);

    expect(await count("verifications", old)).toBe(0);
    expect(await count("attempts", old)).toBe(0);
    expect(await count("delivery_events", old)).toBe(0);
    expect(await count("verifications", [recent, pending])).toBe(2);
    expect(await count("attempts", [recent, pending])).toBe(2);
    expect(await count("delivery_events", [recent, pending])).toBeGreaterThan(4);
    // Only the old published rows went; today's unpublished ones wait for the relay.
    const outbox = await db.selectFrom("outbox").select(["msg_id", "published_at"]).execute();
    expect(outbox.length).toBeGreaterThan(0);
    expect(outbox.every((row) => row.published_at === null)).toBe(true);
    // Counters and keys of 31 days ago are gone; today's remain.
    const counters = await db.selectFrom("rate_limit_counters").select("window_start").execute();
    expect(counters.length).toBeGreaterThan(0);
    expect(counters.every((c) => c.window_start.getTime() > deps.clock.now().getTime() - DAY)).toBe(true);
    expect((await db.selectFrom("idempotency_keys").select("key").where("caller_id", "=", caller.id).orderBy("key").execute()).map((k) => k.key)).toEqual(["d", "e"]);
    // The ledger is the caller's account: never pruned.
    expect(await count("ledger_entries")).toBe(ledger);
  });

  it("forgets an address's wrong codes a window after the last one, unless a lock is still in force", async () => {
    const deps = serviceDeps(db);
    const caller = { id: "retained-guards" };
    const guessedOn = async (phone: string) => {
      const sent = await sendOtp(deps, caller, sendCommand({ destination: { phone } }), newTrace());
      const row = await db.selectFrom("verifications").select("sealed_code").where("id", "=", sent.verification.id).executeTakeFirstOrThrow();
      const wrong = deps.protector.unseal(sent.verification.id, row.sealed_code) === "000000" ? "111111" : "000000";
      expect((await verifyOtp(deps, caller, sent.verification.id, wrong)).outcome).toBe("WRONG_CODE");
      return guardKeysFor(deps.protector, caller.id, [phone])[0]!;
    };
    const idle = await guessedOn("+31611000001");
    const locked = await guessedOn("+31611000002");
    const again = await guessedOn("+31611000003");
    // A lock that outlasts the window (as an address locked many times over gets).
    await db.updateTable("destination_guards").set({ locked_until: new Date(deps.clock.now().getTime() + 40 * DAY) }).where("destination_key", "=", locked).execute();
    deps.clock.advance(20 * DAY);
    await guessedOn("+31611000003"); // its last wrong code is now 20 days later
    deps.clock.advance(11 * DAY);

    while ((await pruneOnce(db, deps.clock, DEFAULT_RETENTION, 100)).more);
    const kept = await db.selectFrom("destination_guards").select("destination_key").where("destination_key", "in", [idle, locked, again]).execute();
    expect(kept.map((g) => g.destination_key).sort()).toEqual([locked, again].sort());
  });
});
