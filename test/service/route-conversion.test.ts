import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { planFor } from "../../src/service/plan-request.js";
import { DEFAULT_ROUTE_HEALTH, RouteHealthTracker } from "../../src/service/route-health.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { listDeliveryEvents } from "../../src/store/repositories/delivery-events.js";
import { convertOnce } from "../harness/conversion-traffic.js";
import { BACKENDS } from "../harness/databases.js";
import { recordingLogger } from "../harness/fakes.js";
import { newTrace, sendCommand, serviceDeps } from "../harness/service-fixture.js";

const sandboxSms = SANDBOX_ROUTES.find((r) => r.id === "sandbox-sms")!;
const routeA: Route = { ...sandboxSms, id: "conv-a", countries: ["NL"] };
const routeB: Route = { ...sandboxSms, id: "conv-b", countries: ["NL"] };
const catalogue = { routes: [routeA, routeB, ...SANDBOX_ROUTES], policies: DEFAULT_POLICIES };
const MINUTE = 60_000;

describe.each(BACKENDS)("routes passed over by conversion on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("opens a route's circuit when its conversion falls under half its baseline, says so in the plan, probes it after the cool-off and closes it when probes convert", async () => {
    const deps = serviceDeps(db, { catalogue });
    const log = recordingLogger();
    const tracker = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH, () => [], log);
    const withHealth = { ...deps, routeHealth: tracker.get };
    const caller = { id: `conversion-circuit-${backend.name}` };
    let n = 0;
    // Spread over prefixes as real traffic is (+3162000…, +3162001…): nothing here looks like pumping.
    const phone = () => `+31620${String(n % 100).padStart(2, "0")}${String(n++).padStart(4, "0")}`;
    const traffic = async (count: number, approved: number, routeId = "conv-a") => {
      for (let i = 0; i < count; i++) await convertOnce(deps, caller, phone(), { approve: i < approved, routeId });
    };
    const plannedRoute = (roll = 0.99) =>
      planFor(catalogue, caller, { destination: { phone: phone() }, policy: "", render: {}, codeLength: 6 }, { health: tracker.get, roll: () => roll }).steps[0]!.routeId;

    // The baseline: 40 sends, 36 approved (90 %).
    await traffic(40, 36);
    deps.clock.advance(5 * MINUTE);
    // Recent: 25 sends, 10 approved (40 %): under 45 %.
    await traffic(25, 10);
    await tracker.refresh();
    const nl = () => tracker.get("conv-a")!.conversion!.get("NL")!;
    expect(nl()).toMatchObject({ recent: { sent: 25, approved: 10 }, baseline: { sent: 40, approved: 36 }, circuit: { state: "open" }, admittedShare: 0 });
    const reason = "conversion 40 % over the last 2 min (25 sends) against 90 % before";
    expect(nl().circuit.reason).toBe(reason);
    expect(log.lines).toContainEqual({ level: "warn", message: `route conv-a to NL passed over: ${reason}`, fields: { route: "conv-a", country: "NL", state: "open" } });

    // Passed over while the other route serves; the plan's first event says why.
    const sent = await sendOtp(withHealth, caller, sendCommand({ destination: { phone: phone() } }), newTrace());
    expect(sent.firstAttempt.routeId).toBe("conv-b");
    expect(sent.warnings).toContain(`route conv-a passed over for NL: ${reason}`);
    const [created] = await listDeliveryEvents(db, sent.verification.id);
    expect(created).toMatchObject({ kind: "VERIFICATION_CREATED", reason: `route conv-a passed over for NL: ${reason}` });

    // After the cool-off: half-open, a share of plans probes it.
    deps.clock.advance(DEFAULT_ROUTE_HEALTH.conversion.coolOffMs);
    await tracker.refresh();
    expect(nl()).toMatchObject({ circuit: { state: "half-open" }, admittedShare: DEFAULT_ROUTE_HEALTH.conversion.probeShare });
    expect(plannedRoute(0.05)).toBe("conv-a");
    expect(plannedRoute(0.5)).toBe("conv-b");

    // 20 probes, 18 approved: probing stops, and a minute later they are judged — closed.
    await traffic(20, 18);
    await tracker.refresh();
    expect(nl()).toMatchObject({ circuit: { state: "half-open" }, admittedShare: 0 });
    expect(plannedRoute(0.05)).toBe("conv-b");
    deps.clock.advance(DEFAULT_ROUTE_HEALTH.conversion.settleMs);
    await tracker.refresh();
    expect(nl()).toMatchObject({ circuit: { state: "closed" }, admittedShare: 1 });
    expect(plannedRoute()).toBe("conv-a");
    expect(log.lines.at(-1)).toMatchObject({ level: "info", message: "route conv-a to NL converts again: back in service" });
  });

  it("leaves flagged prefixes out of a route's conversion", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: `conversion-excluded-${backend.name}` };
    const pumped = "+316888";
    const tracker = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH, () => [pumped]);
    deps.clock.advance(60 * MINUTE); // minutes of their own, apart from the first test's
    for (let i = 0; i < 6; i++) await convertOnce(deps, caller, `+3162100${String(i).padStart(4, "0")}`, { approve: true, routeId: "conv-b" });
    for (let i = 0; i < 4; i++) await convertOnce(deps, caller, `${pumped}0${String(i).padStart(4, "0")}`, { approve: false, routeId: "conv-b" });
    await tracker.refresh();
    expect(tracker.get("conv-b")!.conversion!.get("NL")!.recent).toEqual({ sent: 6, approved: 6 });
  });
});
