import type { KyselyPlugin, RawNode } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Policy } from "../../src/domain/plan.js";
import type { Route } from "../../src/domain/route.js";
import { advanceDuePlans } from "../../src/service/fallback.js";
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

  it("moves on plans that stopped on a passed-over route's delivered receipts, once each, and lets probes' receipts stand until they are judged", async () => {
    const smsOnly: Policy = { name: "sms-only", steps: [{ channel: "sms", deadlineMs: 15_000, escalateWhen: "undelivered" }] };
    // Routes of its own: conversion is counted per route and country, whoever the caller.
    const lyingRoute: Route = { ...sandboxSms, id: "lie-a", countries: ["NL"] };
    const withSmsOnly = { routes: [lyingRoute, { ...routeB, id: "lie-b" }, ...SANDBOX_ROUTES], policies: new Map([...DEFAULT_POLICIES, ["sms-only", smsOnly]]) };
    const deps = serviceDeps(db, { catalogue: withSmsOnly });
    const log = recordingLogger();
    const tracker = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH, () => [], log);
    const withHealth = { ...deps, routeHealth: tracker.get };
    const caller = { id: `distrusted-receipts-${backend.name}` };
    deps.clock.advance(180 * MINUTE); // minutes of their own, apart from the other tests'
    let n = 0;
    const phone = () => `+31630${String(n % 100).padStart(2, "0")}${String(n++).padStart(4, "0")}`;
    // A route that says DELIVERED for every message, and nobody gets a code: the plans stop on the receipt.
    const lyingSend = (policy = "") => convertOnce(deps, caller, phone(), { approve: false, delivered: true, routeId: "lie-a", policy });
    const position = async (id: string) =>
      db.selectFrom("verifications").select(["current_step", "next_step_at"]).where("id", "=", id).executeTakeFirstOrThrow();
    const lastEvent = async (id: string) => (await listDeliveryEvents(db, id)).at(-1)!;
    const movedOn = (line: { message: string }) => line.message.includes("plans that stopped on its delivery receipts move on");

    for (let i = 0; i < 40; i++) await convertOnce(deps, caller, phone(), { approve: i < 36, routeId: "lie-a" });
    deps.clock.advance(5 * MINUTE);
    // Delivered before the drop the circuit is measured on: its receipt keeps counting.
    const earlier = await lyingSend();
    deps.clock.advance(150_000);
    const lying = [];
    for (let i = 0; i < 24; i++) lying.push(await lyingSend());
    const lastStep = await lyingSend("sms-only");
    deps.clock.advance(15_000);
    await advanceDuePlans(deps, 100);
    for (const sent of [earlier, ...lying, lastStep]) expect(await position(sent.verification.id)).toEqual({ current_step: 0, next_step_at: null });

    // The circuit opens on the 25 sends of the last two minutes: their plans move on, the earlier one stays.
    await tracker.refresh();
    expect(tracker.get("lie-a")!.conversion!.get("NL")!.circuit.state).toBe("open");
    expect(log.lines.filter(movedOn)).toEqual([
      { level: "warn", message: "route lie-a to NL passed over: 25 plans that stopped on its delivery receipts move on", fields: { route: "lie-a", country: "NL", plans: 25 } },
    ]);
    expect(await advanceDuePlans(withHealth, 100)).toBe(25);
    const reason = tracker.get("lie-a")!.conversion!.get("NL")!.circuit.reason!;
    expect(reason).toMatch(/^conversion 0 % over the last 2 min \(2\d sends\) against 90 % before$/);
    const distrusted = `sms receipt said delivered, but route lie-a to NL is passed over (${reason}); code not used`;
    for (const sent of lying) {
      const events = await listDeliveryEvents(db, sent.verification.id);
      expect(events.slice(-2)).toMatchObject([
        { kind: "FALLBACK_TRIGGERED", reason: `${distrusted}; next: voice` },
        { kind: "ATTEMPT_QUEUED", channel: "voice" },
      ]);
    }
    expect(await lastEvent(lastStep.verification.id)).toMatchObject({ kind: "FALLBACK_TRIGGERED", reason: `${distrusted}; no step left` });
    expect(await lastEvent(earlier.verification.id)).toMatchObject({ kind: "ATTEMPT_DELIVERED" });

    // Once each: neither this replica's next look nor another replica seeing the circuit open reopens them.
    const otherReplica = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH, () => [], log);
    await tracker.refresh();
    await otherReplica.refresh();
    expect(otherReplica.get("lie-a")!.conversion!.get("NL")!.circuit.state).toBe("open");
    expect(await advanceDuePlans(withHealth, 100)).toBe(0);
    expect(log.lines.filter(movedOn)).toHaveLength(1);
    expect(await lastEvent(lastStep.verification.id)).toMatchObject({ kind: "FALLBACK_TRIGGERED", reason: `${distrusted}; no step left` });

    // A send pinned to the passed-over route: its delivered step moves on at its deadline.
    const pinned = await lyingSend();
    deps.clock.advance(15_000);
    expect(await advanceDuePlans(withHealth, 100)).toBe(1);
    expect(await lastEvent(pinned.verification.id)).toMatchObject({ kind: "ATTEMPT_QUEUED", channel: "voice" });

    // Half-open: the probes' receipts stand (the probe plans stop on them) until the probes are judged.
    deps.clock.advance(DEFAULT_ROUTE_HEALTH.conversion.coolOffMs);
    await advanceDuePlans(withHealth, 100); // the voice steps above end: nothing left to try
    await tracker.refresh();
    expect(tracker.get("lie-a")!.conversion!.get("NL")!.circuit.state).toBe("half-open");
    const probes = [];
    for (let i = 0; i < 20; i++) probes.push(await lyingSend());
    deps.clock.advance(15_000);
    expect(await advanceDuePlans(withHealth, 100)).toBe(20);
    for (const probe of probes) expect(await position(probe.verification.id)).toEqual({ current_step: 0, next_step_at: null });
    await tracker.refresh();
    deps.clock.advance(DEFAULT_ROUTE_HEALTH.conversion.settleMs);
    await tracker.refresh();
    expect(tracker.get("lie-a")!.conversion!.get("NL")!.circuit).toMatchObject({
      state: "open",
      reason: expect.stringMatching(/^probes converted 0 % \(20 sends\) against \d+ % before$/),
    });
    expect(log.lines.filter(movedOn).at(-1)!.message).toBe("route lie-a to NL passed over: 20 plans that stopped on its delivery receipts move on");
    expect(await advanceDuePlans(withHealth, 100)).toBe(20);
    for (const probe of probes) expect(await lastEvent(probe.verification.id)).toMatchObject({ kind: "ATTEMPT_QUEUED", channel: "voice" });
  });

  it("reopens plans once its own scheduler sees the open circuit; a replica whose circuit has not opened yet may judge them done, and moves them on once it opens", async () => {
    const deps = serviceDeps(db, { catalogue: { routes: [{ ...sandboxSms, id: "lie-c", countries: ["NL"] }, ...SANDBOX_ROUTES], policies: DEFAULT_POLICIES } });
    // Replica A's plans are reopened only once its own scheduler would judge them by the open circuit.
    const circuitWhenReopening: string[] = [];
    const watchReopen: KyselyPlugin = {
      transformQuery: ({ node }) => {
        const text = node.kind === "RawNode" ? (node as RawNode).sqlFragments.join("?") : "";
        if (text.includes("update verifications v set next_step_at")) circuitWhenReopening.push(replicaA.get("lie-c")?.conversion?.get("NL")?.circuit.state ?? "unknown");
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    const replicaA: RouteHealthTracker = new RouteHealthTracker(db.withPlugin(watchReopen), deps.clock, DEFAULT_ROUTE_HEALTH);
    const replicaB = new RouteHealthTracker(db, deps.clock, DEFAULT_ROUTE_HEALTH);
    const onB = { ...deps, routeHealth: replicaB.get };
    const caller = { id: `distrusted-replicas-${backend.name}` };
    deps.clock.advance(240 * MINUTE);
    await advanceDuePlans(deps, 1_000); // the other tests' plans, due by now
    let n = 0;
    const phone = () => `+31640${String(n % 100).padStart(2, "0")}${String(n++).padStart(4, "0")}`;
    for (let i = 0; i < 40; i++) await convertOnce(deps, caller, phone(), { approve: i < 36, routeId: "lie-c" });
    deps.clock.advance(5 * MINUTE);
    await advanceDuePlans(deps, 1_000); // the baseline's plans
    const lying = [];
    for (let i = 0; i < 24; i++) lying.push(await convertOnce(deps, caller, phone(), { approve: false, delivered: true, routeId: "lie-c" }));
    deps.clock.advance(15_000);
    expect(await advanceDuePlans(deps, 100)).toBe(24);

    await replicaA.refresh(); // opens: the 24 plans are due again
    expect(circuitWhenReopening).toEqual(["open"]);
    expect(await advanceDuePlans(onB, 100)).toBe(24); // B still trusts the receipts: done again
    const stopped = await db.selectFrom("verifications").select("id").where("id", "in", lying.map((s) => s.verification.id)).where("next_step_at", "is", null).execute();
    expect(stopped).toHaveLength(24);
    await replicaB.refresh();
    expect(await advanceDuePlans(onB, 100)).toBe(24);
    for (const sent of lying) expect((await listDeliveryEvents(db, sent.verification.id)).at(-1)).toMatchObject({ kind: "ATTEMPT_QUEUED", channel: "voice" });
  });
});
