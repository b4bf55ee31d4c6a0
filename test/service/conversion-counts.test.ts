import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { DEFAULT_RETENTION, pruneOnce } from "../../src/service/retention.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

describe.each(BACKENDS)("sends and approvals counted by route, country and number prefix on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const counts = (prefix: string) =>
    db.selectFrom("conversion_counts").select(["route_id", "country", "prefix", "sent", "approved"]).where("prefix", "=", prefix).execute();
  const totals = async (prefix: string) => {
    const rows = await counts(prefix);
    return { sent: rows.reduce((n, r) => n + r.sent, 0), approved: rows.reduce((n, r) => n + r.approved, 0), keys: [...new Set(rows.map((r) => `${r.route_id} ${r.country} ${r.prefix}`))] };
  };

  it("counts a send when a provider accepts it and an approval for the route whose code it was; queued sends and wrong codes count nothing", async () => {
    const deps = serviceDeps(db);
    const caller = { id: `conversion-${backend.name}` };
    const phone = (i: number) => `+3164455${String(i).padStart(4, "0")}`;
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await sendOtp(deps, caller, sendCommand({ destination: { phone: phone(i) } }), newTrace()));
    expect(await totals("+316445")).toEqual({ sent: 0, approved: 0, keys: [] }); // queued is not sent
    for (const s of sent.slice(0, 2)) {
      const attempt = (await findAttempt(db, s.firstAttempt.id))!;
      await recordSubmitted(deps, attempt, { providerMessageId: `c-${attempt.id}`, delivered: false, firstPollAt: null });
    }
    const code = async (id: string) => {
      const row = await db.selectFrom("attempts").select("sealed_code").where("verification_id", "=", id).executeTakeFirstOrThrow();
      return deps.protector.unseal(id, row.sealed_code!);
    };
    const first = sent[0]!.verification.id;
    const right = await code(first);
    expect((await verifyOtp(deps, caller, first, right === "000000" ? "111111" : "000000")).outcome).toBe("WRONG_CODE");
    expect((await verifyOtp(deps, caller, first, right)).outcome).toBe("APPROVED");
    expect((await verifyOtp(deps, caller, first, right)).outcome).toBe("ALREADY_APPROVED");
    expect(await totals("+316445")).toEqual({ sent: 2, approved: 1, keys: ["sandbox-sms NL +316445"] });

    // Kept as long as the rate-limit counters, then deleted by the retention loop.
    deps.clock.advance(DEFAULT_RETENTION.windowCountersMs + 60_000);
    while ((await pruneOnce(db, deps.clock, DEFAULT_RETENTION, 1_000)).more);
    expect(await totals("+316445")).toEqual({ sent: 0, approved: 0, keys: [] });
  });

  it("counts submissions racing for one route, country and prefix exactly (concurrent transactions on PostgreSQL)", async () => {
    const deps = serviceDeps(db);
    const caller = { id: `conversion-race-${backend.name}` };
    const attempts = [];
    for (let i = 0; i < 40; i++) {
      // Spread over ranges of 100 numbers: a run of sequential numbers is refused by its own limit.
      const sent = await sendOtp(deps, caller, sendCommand({ destination: { phone: `+316446${String(i).padStart(2, "0")}123` } }), newTrace());
      attempts.push((await findAttempt(db, sent.firstAttempt.id))!);
    }
    await Promise.all(attempts.map((a) => recordSubmitted(deps, a, { providerMessageId: `r-${a.id}`, delivered: false, firstPollAt: null })));
    const rows = await counts("+316446");
    expect(rows.reduce((n, r) => n + r.sent, 0)).toBe(40);
    expect(rows.length).toBeLessThanOrEqual(8); // a row per shard, not one per send
  });
});
