import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { getDeliveryStats } from "../../src/service/delivery-stats.js";
import type { Catalogue } from "../../src/service/deps.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { sendOtp } from "../../src/service/send-otp.js";
import { verifyOtp } from "../../src/service/verify-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

const priced = (channel: Route["channel"], micros: number): Route => pricedRoute(channel, micros, "stats");
const CATALOGUE: Catalogue = { routes: [priced("sms", 72_000), priced("email", 1_000)], policies: DEFAULT_POLICIES };

describe.each(BACKENDS)("GetDeliveryStats on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("counts one caller's window: delivery rate over submitted, latency percentiles, conversion, fallback, cost; grouped as asked", async () => {
    const deps = serviceDeps(db, { catalogue: CATALOGUE });
    const caller = { id: `stats-${backend.name}` };
    const windowStart = deps.clock.now();
    const codeOf = async (attemptId: string, verificationId: string) => deps.protector.unseal(verificationId, (await findAttempt(db, attemptId))!.sealed_code!);
    const submit = async (attemptId: string, messageId: string) => recordSubmitted(deps, (await findAttempt(db, attemptId))!, { providerMessageId: messageId, delivered: false, firstPollAt: null });
    const receipt = (messageId: string, status: "DELIVERED" | "UNDELIVERED") =>
      applyReceipt(deps, { provider: "sandbox", providerMessageId: messageId, status, occurredAt: deps.clock.now() });

    // 1: SMS delivered after 2 s, approved with its code.
    const one = await sendOtp(deps, caller, sendCommand(), newTrace());
    await submit(one.firstAttempt.id, `m1-${backend.name}`);
    deps.clock.advance(2_000);
    await receipt(`m1-${backend.name}`, "DELIVERED");
    expect((await verifyOtp(deps, caller, one.verification.id, await codeOf(one.firstAttempt.id, one.verification.id))).outcome).toBe("APPROVED");
    // 2: SMS delivered after 4 s, never used.
    const two = await sendOtp(deps, caller, sendCommand(), newTrace());
    await submit(two.firstAttempt.id, `m2-${backend.name}`);
    deps.clock.advance(4_000);
    await receipt(`m2-${backend.name}`, "DELIVERED");
    // 3: SMS undelivered → email, approved with the email's code (its receipt never comes).
    const three = await sendOtp(deps, caller, sendCommand({ destination: { phone: uniquePhone(), email: "stats@example.com" } }), newTrace());
    await submit(three.firstAttempt.id, `m3-${backend.name}`);
    await receipt(`m3-${backend.name}`, "UNDELIVERED");
    await advanceDuePlans(deps, 10);
    const email = (await db.selectFrom("attempts").select("id").where("verification_id", "=", three.verification.id).where("channel", "=", "email").executeTakeFirstOrThrow()).id;
    await submit(email, `m4-${backend.name}`);
    expect((await verifyOtp(deps, caller, three.verification.id, await codeOf(email, three.verification.id))).outcome).toBe("APPROVED");
    // 4: SMS queued, never submitted.
    await sendOtp(deps, caller, sendCommand(), newTrace());
    // Another caller's traffic is not counted.
    await sendOtp(deps, { id: `other-${backend.name}` }, sendCommand(), newTrace());
    const window = { from: windowStart, to: new Date(deps.clock.now().getTime() + 1) };

    const [all, ...more] = await getDeliveryStats(deps, caller, { ...window, groupBy: [] });
    expect(more).toEqual([]);
    expect(all).toEqual({
      attempts: 5,
      submitted: 4,
      delivered: 2,
      deliveryRate: 0.5,
      receiptLatencyP50Ms: 3_000,
      receiptLatencyP95Ms: 3_900,
      approved: 2,
      conversion: 0.4,
      escalated: 1,
      fallbackRate: 0.2,
      cost: { currency: "EUR", micros: 3 * 72_000 + 1_000 },
      costPerApproval: { currency: "EUR", micros: (3 * 72_000 + 1_000) / 2 },
    });

    const byRoute = await getDeliveryStats(deps, caller, { ...window, groupBy: ["route", "country"] });
    expect(byRoute.map((r) => [r.channel, r.routeId, r.country, r.attempts, r.submitted, r.delivered, r.approved, r.escalated, r.cost.micros])).toEqual([
      ["email", "stats-email", "NL", 1, 1, 0, 1, 0, 1_000],
      ["sms", "stats-sms", "NL", 4, 3, 2, 1, 1, 216_000],
    ]);
    expect(byRoute[0]!.costPerApproval).toEqual({ currency: "EUR", micros: 1_000 });
    expect(byRoute[1]!.deliveryRate).toBeCloseTo(2 / 3);

    // A time series: 3-s buckets from the window's start (sends at 0 and 2 s, then three attempts at 6 s).
    const series = await getDeliveryStats(deps, caller, { ...window, groupBy: ["channel"], intervalMs: 3_000 });
    expect(series.map((r) => [r.bucketStart!.getTime() - windowStart.getTime(), r.channel, r.attempts, r.delivered])).toEqual([
      [0, "sms", 2, 2],
      [6_000, "email", 1, 0],
      [6_000, "sms", 2, 0],
    ]);

    // The fallback funnel: per step and channel, step 0 counts the verifications begun.
    const funnel = await getDeliveryStats(deps, caller, { ...window, groupBy: ["step", "channel"] });
    expect(funnel.map((r) => [r.stepIndex, r.channel, r.attempts, r.delivered, r.escalated, r.approved])).toEqual([
      [0, "sms", 4, 2, 1, 1],
      [1, "email", 1, 0, 0, 1],
    ]);

    // By number prefix (the phone's, as planned): these test numbers share one.
    const byPrefix = await getDeliveryStats(deps, caller, { ...window, groupBy: ["prefix"] });
    expect(byPrefix.map((r) => [r.numberPrefix, r.attempts, r.approved])).toEqual([[one.verification.steps[0]!.numberPrefix, 5, 2]]);
    expect(byPrefix[0]!.numberPrefix).toMatch(/^\+316\d{3}$/);

    // A window that ends before the traffic began counts nothing.
    expect(await getDeliveryStats(deps, caller, { from: new Date(windowStart.getTime() - 60_000), to: windowStart, groupBy: ["channel"] })).toEqual([]);
  });
});
