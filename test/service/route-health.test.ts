import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import { planFor } from "../../src/service/plan-request.js";
import { RouteHealthTracker } from "../../src/service/route-health.js";
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
    const tracker = new RouteHealthTracker(db, deps.clock, { windowMs: 3_600_000, minSamples: 20, minDeliveryRate: 0.5 });
    const plan = () => planFor(catalogue, caller, { destination: { phone: uniquePhone() }, policy: "", render: {}, codeLength: 6 }, tracker.get);
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

    // Outside the window the record no longer counts.
    deps.clock.advance(3_600_001);
    await tracker.refresh();
    expect(tracker.get("sms-a")).toBeUndefined();
    expect(plan().steps[0]!.routeId).toBe("sms-a");
  });
});
