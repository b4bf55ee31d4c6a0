import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../src/store/database.js";
import { claimIdempotencyKey } from "../../src/store/repositories/idempotency-keys.js";
import { claimUnpublished, markPublished, markPublishedByMsgId, outboxRow } from "../../src/store/repositories/outbox.js";
import { insertVerification, lastEventSequence } from "../../src/store/repositories/verifications.js";
import { approveCode } from "../../src/store/repositories/code-checks.js";
import { admitSends, releaseSend, type SendAdmissionQuery, type SendWindow } from "../../src/store/repositories/send-admission.js";
import { inTransaction } from "../../src/store/transaction.js";
import { BACKENDS } from "../harness/databases.js";

const now = new Date("2026-11-22T10:00:00Z");

/** One send's admission, alone in its statement. */
async function admitSend(db: Db, query: SendAdmissionQuery) {
  return (await admitSends(db, [query]))[0]!;
}

async function insertPending(db: Db, id: string): Promise<void> {
  await inTransaction(db, ({ trx }) =>
    insertVerification(trx, {
      id,
      caller_id: "c",
      status: "PENDING",
      policy: "default",
      destination: JSON.stringify({ phone: "+31612345678" }),
      destination_key: "k",
      code_hash: "h",
      sealed_code: "s",
      render: "{}",
      plan: "[]",
      max_attempts: 5,
      client_reference: "",
      metadata: JSON.stringify({ a: "b" }),
      trace_id: "t",
      created_at: now,
      expires_at: new Date(now.getTime() + 60_000),
      approved_at: null,
      approved_attempt_id: null,
      ended_at: null,
    }),
  );
}

describe.each(BACKENDS)("store on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("returns the same JavaScript types: int8 and count(*) as numbers, timestamptz as Date, jsonb parsed", async () => {
    await insertPending(db, "types");
    const seq = await inTransaction(db, ({ trx }) => lastEventSequence(trx, "types"));
    expect(seq).toBe(0);
    const row = await db
      .selectFrom("verifications")
      .select(["event_seq", "created_at", "metadata", sql<number>`count(*) over ()`.as("total")])
      .where("id", "=", "types")
      .executeTakeFirstOrThrow();
    expect(typeof row.event_seq).toBe("number");
    expect(typeof row.total).toBe("number");
    expect(row.created_at).toBeInstanceOf(Date);
    expect(row.created_at.getTime()).toBe(now.getTime());
    expect(row.metadata).toEqual({ a: "b" });
  });

  it("approves a pending verification once: of 20 concurrent conditional approvals one row, one event", async () => {
    await insertPending(db, "race");
    const event = { verification_id: "race", sequence: 1, kind: "VERIFIED", attempt_id: null, channel: null, route_id: null, status: null, provider_message_id: null, provider_error_code: null, provider_error_reason: null, reason: null, currency: null, price_micros: null, latency_ms: null, trace_id: "t", occurred_at: now };
    const message = { msg_id: "race.1", subject: "otp.test", payload: "", headers: "{}", created_at: now };
    const approve = () =>
      inTransaction(db, async ({ trx }) => {
        const approved = await approveCode(trx, { id: "race", now, attemptId: null, seenSequence: 0, guardKeys: ["k"], event, message });
        if (approved === undefined) throw new Error("moved on"); // rolls back what the statement wrote, as VerifyOtp does
        return approved;
      });
    const results = await Promise.allSettled(Array.from({ length: 20 }, approve));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await db.selectFrom("delivery_events").select("sequence").where("verification_id", "=", "race").execute()).toEqual([{ sequence: 1 }]);
    expect(await db.selectFrom("outbox").select("id").where("msg_id", "=", "race.1").execute()).toHaveLength(1);
    await db.deleteFrom("outbox").where("msg_id", "=", "race.1").execute(); // the relay test below expects only its own rows
  });

  it("gives an idempotency key to its first claimant only", async () => {
    await insertPending(db, "idem-1");
    const claim = (verificationId: string, requestHash: string) =>
      inTransaction(db, ({ trx }) => claimIdempotencyKey(trx, { callerId: "c", key: "k1", requestHash, verificationId, now }));
    expect(await claim("idem-1", "h1")).toBeUndefined();
    expect(await claim("idem-2", "h2")).toMatchObject({ verification_id: "idem-1", request_hash: "h1" });
  });

  it("counts a send in all its windows atomically, each count with the previous window's, and takes it back out", async () => {
    const before = new Date(now.getTime() - 60_000);
    const window = (key: string, start: Date, amount = 1) => ({ key, windowStart: start, previousStart: new Date(start.getTime() - 60_000), amount });
    const query = (windows: SendWindow[]) => ({ callerId: "c", idempotencyKey: "", guardKeys: ["g-free"], windows, now });
    await admitSend(db, query([window("dest:x", before)]));
    const admissions = await Promise.all(Array.from({ length: 10 }, () => admitSend(db, query([window("caller:c", now), window("dest:x", now)]))));
    const counts = admissions.map((a) => (a.kind === "counted" ? a.counts : new Map()));
    expect(counts.map((c) => c.get("dest:x")?.current).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(counts.map((c) => c.get("caller:c")?.current).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(counts.every((c) => c.get("dest:x")?.previous === 1 && c.get("caller:c")?.previous === 0)).toBe(true);

    await releaseSend(db, [window("caller:c", now), window("dest:x", now)]);
    const after = await admitSend(db, query([window("dest:x", now)]));
    expect(after.kind === "counted" && after.counts.get("dest:x")?.current).toBe(10);
  });

  it("adds up amounts beyond 32 bits (a spend in micros) and takes one amount back out", async () => {
    const spend = { key: "spend:c:NL", windowStart: now, previousStart: new Date(now.getTime() - 60_000), amount: 3_000_000_000 };
    const query = { callerId: "c", idempotencyKey: "", guardKeys: [], windows: [spend], now };
    await admitSend(db, query);
    const second = await admitSend(db, query);
    expect(second.kind === "counted" && second.counts.get("spend:c:NL")?.current).toBe(6_000_000_000);
    await releaseSend(db, [spend]);
    const third = await admitSend(db, query);
    expect(third.kind === "counted" && third.counts.get("spend:c:NL")?.current).toBe(6_000_000_000);
  });

  it("counts nothing for a held idempotency key or a locked destination guard", async () => {
    await insertPending(db, "idem-admit");
    await inTransaction(db, ({ trx }) => claimIdempotencyKey(trx, { callerId: "c", key: "k-admit", requestHash: "h", verificationId: "idem-admit", now }));
    await db.insertInto("destination_guards").values({ destination_key: "g-locked", consecutive_failures: 0, lock_count: 1, locked_until: new Date(now.getTime() + 1_000) }).execute();
    const windows = [{ key: "dest:admit", windowStart: now, previousStart: new Date(now.getTime() - 60_000), amount: 1 }];
    expect(await admitSend(db, { callerId: "c", idempotencyKey: "k-admit", guardKeys: ["g-locked"], windows, now })).toEqual({ kind: "held", verificationId: "idem-admit", requestHash: "h" });
    expect(await admitSend(db, { callerId: "c", idempotencyKey: "other", guardKeys: ["g-free", "g-locked"], windows, now })).toEqual({ kind: "locked", until: new Date(now.getTime() + 1_000) });
    const counted = await admitSend(db, { callerId: "c", idempotencyKey: "other", guardKeys: ["g-free"], windows, now });
    expect(counted.kind === "counted" && counted.counts.get("dest:admit")).toEqual({ current: 1, previous: 0 });
  });

  it("counts a group of sends in one statement as if they came one after the other, skipping held and locked ones", async () => {
    await insertPending(db, "idem-group");
    await inTransaction(db, ({ trx }) => claimIdempotencyKey(trx, { callerId: "c", key: "k-group", requestHash: "h", verificationId: "idem-group", now }));
    await db.insertInto("destination_guards").values({ destination_key: "g-group-locked", consecutive_failures: 0, lock_count: 1, locked_until: new Date(now.getTime() + 5_000) }).execute();
    const next = new Date(now.getTime() + 60_000);
    const window = (key: string, start: Date, amount = 1): SendWindow => ({ key, windowStart: start, previousStart: new Date(start.getTime() - 60_000), amount });
    const send = (windows: SendWindow[], over: Partial<SendAdmissionQuery> = {}): SendAdmissionQuery => ({ callerId: "c", idempotencyKey: "", guardKeys: ["g-free"], windows, now, ...over });
    await admitSend(db, send([window("caller:group", now, 2)]));
    const group = await admitSends(db, [
      send([window("caller:group", now), window("dest:group-a", now)]),
      send([window("caller:group", now)], { idempotencyKey: "k-group" }),
      send([window("caller:group", now), window("spend:group", now, 500)]),
      send([window("caller:group", now)], { guardKeys: ["g-free", "g-group-locked"] }),
      send([window("caller:group", now), window("dest:group-a", now), window("spend:group", now, 700)]),
      // A send of the next minute: its own row, and the minute before (this group's) as its previous count.
      send([window("caller:group", next)], { now: next }),
    ]);
    expect(group.map((a) => a.kind)).toEqual(["counted", "held", "counted", "locked", "counted", "counted"]);
    const counts = group.map((a) => (a.kind === "counted" ? Object.fromEntries(a.counts) : undefined));
    expect(counts[0]).toEqual({ "caller:group": { current: 3, previous: 0 }, "dest:group-a": { current: 1, previous: 0 } });
    expect(counts[2]).toEqual({ "caller:group": { current: 4, previous: 0 }, "spend:group": { current: 500, previous: 0 } });
    expect(counts[4]).toEqual({ "caller:group": { current: 5, previous: 0 }, "dest:group-a": { current: 2, previous: 0 }, "spend:group": { current: 1_200, previous: 0 } });
    // The previous window is read as it was when the statement began (2), as a lone send's would be.
    expect(counts[5]).toEqual({ "caller:group": { current: 1, previous: 2 } });
    expect(group[1]).toEqual({ kind: "held", verificationId: "idem-group", requestHash: "h" });
    expect(group[3]).toEqual({ kind: "locked", until: new Date(now.getTime() + 5_000) });
    const stored = await db.selectFrom("rate_limit_counters").select(["key", "count"]).where("key", "in", ["caller:group", "dest:group-a", "spend:group"]).where("window_start", "=", now).orderBy("key").execute();
    expect(stored.map((r) => [r.key, Number(r.count)])).toEqual([["caller:group", 5], ["dest:group-a", 2], ["spend:group", 1_200]]);
  });

  it("lets concurrent relays claim disjoint outbox rows, and hides published ones", async () => {
    await inTransaction(db, async ({ trx }) => {
      for (let i = 0; i < 6; i++) await trx.insertInto("outbox").values(outboxRow({ msgId: `m${i}`, subject: "otp.test", payload: Buffer.from(`p${i}`) }, now)).execute();
    });
    const justAfter = new Date(now.getTime() + 1);
    // Two transactions open at once. On Postgres the first holds its row locks
    // until the second has claimed: without SKIP LOCKED the second would block
    // on them forever. PGlite has one connection and runs them one after the other.
    const holdLocks = backend.name === "postgres";
    let claimed!: () => void;
    const firstClaimed = new Promise<void>((r) => (claimed = r));
    let release!: () => void;
    const secondDone = new Promise<void>((r) => (release = r));
    const claimBatch = () =>
      inTransaction(db, async ({ trx }) => {
        const rows = await claimUnpublished(trx, 3, justAfter);
        await markPublished(trx, rows.map((r) => r.id), now);
        return rows;
      });
    const first = inTransaction(db, async ({ trx }) => {
      const rows = await claimUnpublished(trx, 3, justAfter);
      await markPublished(trx, rows.map((r) => r.id), now);
      claimed();
      if (holdLocks) await secondDone;
      return rows.map((r) => r.msg_id);
    });
    const second = (async () => {
      await firstClaimed;
      const rows = await claimBatch();
      release();
      return rows.map((r) => r.msg_id);
    })();
    const [a, b] = await Promise.all([first, second]);
    expect([...a, ...b].sort()).toEqual(["m0", "m1", "m2", "m3", "m4", "m5"]);
    expect(await inTransaction(db, ({ trx }) => claimUnpublished(trx, 10, justAfter))).toEqual([]);
  });

  it("leaves the relay only rows written before its cutoff, and marks rows published by msg id once", async () => {
    const later = new Date(now.getTime() + 5_000);
    await inTransaction(db, async ({ trx }) => {
      await trx.insertInto("outbox").values(outboxRow({ msgId: "old", subject: "otp.test", payload: Buffer.from("o") }, now)).execute();
      await trx.insertInto("outbox").values(outboxRow({ msgId: "fresh", subject: "otp.test", payload: Buffer.from("f") }, later)).execute();
    });
    const claimed = await inTransaction(db, ({ trx }) => claimUnpublished(trx, 10, new Date(later.getTime() - 1)));
    expect(claimed.map((r) => r.msg_id)).toEqual(["old"]);

    const first = new Date(later.getTime() + 1);
    await markPublishedByMsgId(db, ["fresh", "old"], first);
    await markPublishedByMsgId(db, ["fresh"], new Date(first.getTime() + 1));
    const rows = await db.selectFrom("outbox").select(["msg_id", "published_at"]).where("msg_id", "in", ["fresh", "old"]).orderBy("msg_id").execute();
    expect(rows).toEqual([
      { msg_id: "fresh", published_at: first },
      { msg_id: "old", published_at: first },
    ]);
    expect(await inTransaction(db, ({ trx }) => claimUnpublished(trx, 10, new Date(first.getTime() + 10_000)))).toEqual([]);
  });
});
