import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES } from "../../src/config/sandbox-catalogue.js";
import { RateLimitedError } from "../../src/domain/errors.js";
import type { DailySpendCap } from "../../src/domain/spend-cap.js";
import { recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import type { Catalogue } from "../../src/service/deps.js";
import { getVerification } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

/** SMS 0.072, email 0.001, voice 0.15, push free — all EUR. */
const PRICED: Catalogue = {
  routes: [pricedRoute("sms", 72_000), pricedRoute("email", 1_000), pricedRoute("voice", 150_000), pricedRoute("push", 0)],
  policies: DEFAULT_POLICIES,
};
const eur = (countries: Record<string, number>, otherCountries?: number): DailySpendCap => ({
  currency: "EUR",
  countries: new Map(Object.entries(countries)),
  ...(otherCountries !== undefined ? { otherCountries } : {}),
});
const many = { max: 1_000_000, windowMs: 60_000 };
const UNLIMITED = { sendsPerCaller: many, sendsPerDestination: many, sendsPerNumberRange: many };

describe.each(BACKENDS)("daily spend caps per caller and country on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  const capped = (callerId: string, cap: DailySpendCap) => ({ ...serviceDeps(db, { catalogue: PRICED, limits: UNLIMITED }), spendCaps: new Map([[callerId, cap]]) });
  const verifications = async (callerId: string) => (await db.selectFrom("verifications").select("id").where("caller_id", "=", callerId).execute()).length;
  const spent = async (callerId: string, country: string) =>
    (await db.selectFrom("rate_limit_counters").select(["window_start", "count"]).where("key", "=", `spend:${callerId}:${country}`).execute()).map((r) => r.count);

  it("refuses a send that would pass its country's cap, until the next UTC day; other countries are not held", async () => {
    const caller = { id: `cap-${backend.name}` };
    const deps = capped(caller.id, eur({ NL: 200_000 }, 100_000)); // NL 0.20, every other country 0.10
    await sendOtp(deps, caller, sendCommand(), newTrace());
    await sendOtp(deps, caller, sendCommand(), newTrace()); // 0.144 spent
    const refused = await sendOtp(deps, caller, sendCommand(), newTrace()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RateLimitedError);
    expect(refused).toMatchObject({ message: "the daily spend cap for NL (0.20 EUR) is reached" });
    // The clock starts at 10:00 UTC: the cap lifts at midnight.
    expect((refused as RateLimitedError).retryAfterMs).toBe(14 * 3_600_000);
    expect(await verifications(caller.id)).toBe(2);
    expect(await spent(caller.id, "NL")).toEqual([144_000]); // the refused send taken back out

    await sendOtp(deps, caller, sendCommand({ destination: { phone: "+32471234567" } }), newTrace()); // BE: under "*", 0.072 of 0.10
    await expect(sendOtp(deps, caller, sendCommand({ destination: { phone: "+32471234568" } }), newTrace())).rejects.toThrow("the daily spend cap for BE (0.10 EUR) is reached");
    await sendOtp(deps, { id: `${caller.id}-uncapped` }, sendCommand(), newTrace()); // another caller

    deps.clock.advance(14 * 3_600_000);
    await sendOtp(deps, caller, sendCommand(), newTrace());
    expect(await spent(caller.id, "NL")).toEqual(expect.arrayContaining([144_000, 72_000]));
  });

  it("counts fallback steps when the scheduler queues them, and skips a step the cap cannot take", async () => {
    const caller = { id: `cap-fallback-${backend.name}` };
    const deps = capped(caller.id, eur({ NL: 100_000 })); // SMS 0.072 + email 0.001 fit; voice 0.15 does not; push is free
    const sent = await sendOtp(deps, caller, sendCommand({ destination: { phone: uniquePhone(), email: "cap@example.com", pushToken: "tok-cap" } }), newTrace());
    const details = () => getVerification(deps, caller, sent.verification.id);
    const submitQueued = async () => {
      const queued = (await details()).attempts.find((a) => a.status === "QUEUED")!;
      await recordSubmitted(deps, (await findAttempt(db, queued.id))!, { providerMessageId: `p-${queued.id}`, delivered: false, firstPollAt: null });
    };
    await submitQueued();
    deps.clock.advance(15_000);
    await advanceDuePlans(deps, 10);
    await submitQueued();
    deps.clock.advance(30_000);
    await advanceDuePlans(deps, 10);

    expect((await details()).attempts.map((a) => a.channel)).toEqual(["sms", "email", "push"]);
    expect((await details()).events.filter((e) => e.kind === "FALLBACK_TRIGGERED").at(-1)?.reason).toBe(
      "email code not used within 30 s; voice skipped: the daily spend cap for NL (0.10 EUR) is reached; next: push",
    );
    expect(await spent(caller.id, "NL")).toEqual([73_000]);
    // The day's spend, fallback included, now holds new sends back.
    await expect(sendOtp(deps, caller, sendCommand(), newTrace())).rejects.toThrow("the daily spend cap for NL (0.10 EUR) is reached");
  });

  it("lets exactly what the cap pays for through when 30 sends race", async () => {
    const caller = { id: `cap-race-${backend.name}` };
    const deps = capped(caller.id, eur({ NL: 500_000 })); // six SMS at 0.072
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => sendOtp(deps, caller, sendCommand(), newTrace())));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(6);
    expect(results.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason instanceof RateLimitedError)).toBe(true);
    expect(await verifications(caller.id)).toBe(6);
    expect(await spent(caller.id, "NL")).toEqual([6 * 72_000]);
  });
});
