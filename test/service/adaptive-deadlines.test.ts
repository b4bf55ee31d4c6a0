import { metrics } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Policy } from "../../src/domain/plan.js";
import type { Route } from "../../src/domain/route.js";
import { applyReceipt, recordSubmitted } from "../../src/service/attempt-lifecycle.js";
import type { Catalogue } from "../../src/service/deps.js";
import { getVerification } from "../../src/service/end-verification.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
import { planFor } from "../../src/service/plan-request.js";
import { DEFAULT_ROUTE_HEALTH, RouteHealthTracker } from "../../src/service/route-health.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { findAttempt } from "../../src/store/repositories/attempts.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

/** Reads the process's metrics on demand (a scrape, without the HTTP). */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}
const reader = new TestReader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

async function lateReceipts(route: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === "otp_late_receipts");
  const points = (metric?.dataPoints ?? []) as Array<{ attributes: Record<string, unknown>; value: number }>;
  return points.filter((p) => p.attributes.route === route && p.attributes.channel === "sms").reduce((n, p) => n + p.value, 0);
}

const sandbox = (channel: Route["channel"]) => SANDBOX_ROUTES.find((r) => r.channel === channel)!;
const routes: Route[] = ["sms-auto", "sms-fast", "sms-slow", "sms-steady"].map((id) => ({ ...sandbox("sms"), id }));
/** SMS with `deadline: auto` between 2 s and 20 s, then email. */
const AUTO: Policy = {
  name: "default",
  steps: [
    { channel: "sms", deadlineMs: 20_000, autoDeadline: { minMs: 2_000, maxMs: 20_000 }, escalateWhen: "undelivered" },
    { channel: "email", deadlineMs: 30_000, escalateWhen: "unverified" },
  ],
};
const catalogue: Catalogue = { routes: [...routes, sandbox("email")], policies: new Map([["default", AUTO]]) };
const BE = () => `+32470${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}`;
const DE = "+4915112345678";

let callers = 0;

describe.each(BACKENDS)("adaptive step deadlines on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  function setUp() {
    const base = serviceDeps(db, { catalogue });
    const tracker = new RouteHealthTracker(db, base.clock, DEFAULT_ROUTE_HEALTH);
    const deps = { ...base, routeHealth: tracker.get };
    const caller = { id: `auto-${backend.name}-${++callers}` };
    /** A code sent on `routeId` to `phone` whose delivery receipt says it took `latencyMs`. */
    const delivered = async (routeId: string, phone: string, latencyMs: number) => {
      const sent = await sendOtp(deps, caller, sendCommand({ destination: { phone }, overrides: new Map([["sms", { routeId }]]) }), newTrace());
      const attempt = (await findAttempt(db, sent.firstAttempt.id))!;
      await recordSubmitted(deps, attempt, { providerMessageId: `m-${attempt.id}`, delivered: false, firstPollAt: null });
      const at = new Date(deps.clock.now().getTime() + latencyMs);
      expect(await applyReceipt(deps, { provider: "sandbox", providerMessageId: `m-${attempt.id}`, status: "DELIVERED", occurredAt: at })).toBe("applied");
    };
    const deadline = (phone: string, routeId = "sms-auto") =>
      planFor(catalogue, caller, { destination: { phone }, policy: "", render: {}, codeLength: 6, overrides: new Map([["sms", { routeId }]]) }, { health: tracker.get }).steps[0]!.deadlineMs;
    return { deps, tracker, caller, delivered, deadline };
  }

  it("waits for the route's p95 receipt latency to the country, else the route's, within the step's bounds; the upper bound before anything is measured", async () => {
    const { tracker, delivered, deadline } = setUp();
    expect(deadline(uniquePhone())).toBe(20_000);

    // 40 Dutch receipts after 1.00–2.95 s: p95 in the [2 s, 3 s) bucket.
    for (let i = 0; i < 40; i++) await delivered("sms-auto", uniquePhone(), 1_000 + i * 50);
    // 19 Belgian ones after 9–12 s: too few for a Belgian figure of their own.
    for (let i = 0; i < 19; i++) await delivered("sms-auto", BE(), 9_000 + i * 150);
    await tracker.refresh();
    expect(tracker.get("sms-auto")).toMatchObject({ p95LatencyMs: 13_000, p95LatencyMsByCountry: new Map([["NL", 3_000]]) });
    expect(deadline(uniquePhone())).toBe(3_000);
    expect(deadline(BE())).toBe(13_000); // the route's, over every country
    expect(deadline(DE)).toBe(13_000);

    await delivered("sms-auto", BE(), 12_000); // the 20th Belgian receipt
    await tracker.refresh();
    expect(tracker.get("sms-auto")!.p95LatencyMsByCountry).toEqual(new Map([["NL", 3_000], ["BE", 13_000]]));
    expect(deadline(BE())).toBe(13_000);

    // Clamped: a route faster than the lower bound, and one slower than the upper.
    for (let i = 0; i < 20; i++) await delivered("sms-fast", uniquePhone(), 300);
    for (let i = 0; i < 20; i++) await delivered("sms-slow", uniquePhone(), 40_000);
    await tracker.refresh();
    expect([tracker.get("sms-fast")!.p95LatencyMs, tracker.get("sms-slow")!.p95LatencyMs]).toEqual([500, 60_000]);
    expect([deadline(uniquePhone(), "sms-fast"), deadline(uniquePhone(), "sms-slow")]).toEqual([2_000, 20_000]);
  });

  it("escalates at the measured deadline, and counts a delivery that comes after it as a late receipt", async () => {
    const { deps, tracker, caller, delivered } = setUp();
    for (let i = 0; i < 20; i++) await delivered("sms-steady", uniquePhone(), 1_500);
    await tracker.refresh();
    const lateBefore = await lateReceipts("sms-steady");

    const destination = { phone: uniquePhone(), email: `late${callers}@example.com` };
    const sent = await sendOtp(deps, caller, sendCommand({ destination, overrides: new Map([["sms", { routeId: "sms-steady" }]]) }), newTrace());
    expect(sent.verification.steps[0]).toMatchObject({ routeId: "sms-steady", deadlineMs: 2_000 });
    const sms = (await findAttempt(db, sent.firstAttempt.id))!;
    await recordSubmitted(deps, sms, { providerMessageId: `m-${sms.id}`, delivered: false, firstPollAt: null });
    const channels = async () => (await getVerification(deps, caller, sent.verification.id)).attempts.map((a) => a.channel);
    deps.clock.advance(1_999);
    await advanceDuePlans(deps, 10);
    expect(await channels()).toEqual(["sms"]);
    deps.clock.advance(1);
    await advanceDuePlans(deps, 10);
    expect(await channels()).toEqual(["sms", "email"]);
    const fallback = (await getVerification(deps, caller, sent.verification.id)).events.find((e) => e.kind === "FALLBACK_TRIGGERED");
    expect(fallback?.reason).toBe("no sms delivery receipt within 2 s; next: email");

    // The SMS arrived after all: the email was a needless fallback.
    deps.clock.advance(3_000);
    await applyReceipt(deps, { provider: "sandbox", providerMessageId: `m-${sms.id}`, status: "DELIVERED", occurredAt: deps.clock.now() });
    expect((await lateReceipts("sms-steady")) - lateBefore).toBe(1);
  });
});
