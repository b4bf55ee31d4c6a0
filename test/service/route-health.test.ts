import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { planFor } from "../../src/service/plan-request.js";
import { DEFAULT_RETENTION, pruneOnce } from "../../src/service/retention.js";
import { DEFAULT_ROUTE_HEALTH, RouteHealthTracker } from "../../src/service/route-health.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

const sms = SANDBOX_ROUTES.find((r) => r.channel === "sms")!;
const routeA: Route = { ...sms, id: "sms-a" };
const routeB: Route = { ...sms, id: "sms-b" };
const catalogue = { routes: [routeA, routeB, ...SANDBOX_ROUTES.filter((r) => r.channel !== "sms")], policies: DEFAULT_POLICIES };

describe.each(BACKENDS)("route health on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("passes over a route whose delivery rate fell under the threshold while a healthier one exists", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: "health" };
    const tracker = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH);
    const plan = () => planFor(catalogue, caller, { destination: { phone: uniquePhone() }, policy: "", render: {}, codeLength: 6 }, { health: tracker.get });
    expect(plan().steps[0]!.routeId).toBe("sms-a");

    // 24 receipts on sms-a: 6 delivered (after 3 s), 18 undelivered.
    for (let i = 0; i < 24; i++) {
      const sent = await sendOtp(deps, caller, sendCommand({ overrides: new Map([["sms", { routeId: "sms-a" }]]) }), newTrace());
      const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
      await recordSubmitted(deps, attempt, { providerMessageId: `m-${attempt.id}`, delivered: false, firstPollAt: null });
      const at = new Date(deps.clock.now().getTime() + 3_000);
      await applyReceipt(deps, { provider: "sandbox", providerMessageId: `m-${attempt.id}`, status: i % 4 === 0 ? "DELIVERED" : "UNDELIVERED", occurredAt: at });
    }
    await tracker.refresh();
    expect(tracker.get("sms-a")).toMatchObject({ deliveryRate: 0.25, samples: 24, healthy: false, p50LatencyMs: 3_000 });
    expect(tracker.get("sms-b")).toBeUndefined();
    expect(plan().steps[0]!.routeId).toBe("sms-b");

    // Outside the window the receipts no longer count (its sends still count for conversion, a day long).
    deps.clock.advance(3_600_001);
    await tracker.refresh();
    expect(tracker.get("sms-a")).toMatchObject({ deliveryRate: 1, samples: 0, healthy: true });
    expect(plan().steps[0]!.routeId).toBe("sms-a");
  });

  it("counts receipts racing for one route exactly, in a few rows whatever their number, and forgets them with the counters", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: "health-race" };
    const tracker = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const sent = await sendOtp(deps, caller, sendCommand({ overrides: new Map([["sms", { routeId: "sms-b" }]]) }), newTrace());
      const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
      await recordSubmitted(deps, attempt, { providerMessageId: `race-${attempt.id}`, delivered: false, firstPollAt: null });
      ids.push(attempt.id);
    }
    // All at once (on PostgreSQL, concurrent transactions): 40 delivered after 1.2 s, 20 undelivered.
    const at = new Date(deps.clock.now().getTime() + 1_200);
    const outcomes = await Promise.all(
      ids.map((id, i) => applyReceipt(deps, { provider: "sandbox", providerMessageId: `race-${id}`, status: i % 3 === 0 ? "UNDELIVERED" : "DELIVERED", occurredAt: at })),
    );
    expect(outcomes.every((o) => o === "applied")).toBe(true);
    await tracker.refresh();
    expect(tracker.get("sms-b")).toMatchObject({ samples: 60, deliveryRate: 40 / 60, p50LatencyMs: 1_200 });
    // One minute, two outcomes (one latency bucket): at most a row per shard for each, not one per receipt.
    const rows = await db.selectFrom("route_outcomes").select(["attempts"]).where("route_id", "=", "sms-b").execute();
    expect(rows.length).toBeLessThanOrEqual(16);
    expect(rows.reduce((n, r) => n + r.attempts, 0)).toBe(60);

    // Kept as long as the rate-limit counters, then deleted by the retention loop.
    deps.clock.advance(DEFAULT_RETENTION.windowCountersMs + 60_000);
    while ((await pruneOnce(db, deps.clock, DEFAULT_RETENTION, 1_000)).more);
    expect(await db.selectFrom("route_outcomes").select("route_id").execute()).toEqual([]);
  });
});
