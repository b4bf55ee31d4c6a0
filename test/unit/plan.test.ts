import { describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { PreconditionError } from "../../src/domain/errors.js";
import { DEFAULT_POLICY, planVerification } from "../../src/domain/plan.js";
import type { Route } from "../../src/domain/route.js";
import { planFor } from "../../src/service/plan-request.js";

const marketing: Route = { ...SANDBOX_ROUTES[0]!, id: "promo-sms", trafficClass: "marketing" };
const dutchOnly: Route = { ...SANDBOX_ROUTES[0]!, id: "nl-sms", countries: ["NL"], pricesMicros: { NL: 70_000 } };
const routes = [dutchOnly, ...SANDBOX_ROUTES, marketing];
const base = { policy: DEFAULT_POLICY, routes, render: { brand: "Acme" }, codeLength: 6, numberPrefixDigits: 6 };

describe("planVerification", () => {
  it("skips channels without an address, in policy order", () => {
    const plan = planVerification({ ...base, destination: { phone: "+31612345678", email: "a@example.com" } });
    expect(plan.steps.map((s) => s.channel)).toEqual(["sms", "email", "voice"]);
    expect(plan.steps.map((s) => s.index)).toEqual([0, 1, 2]);
    // Every step records the phone's country and prefix (the email step too: conversion is counted by them).
    expect(plan.steps.map((s) => [s.country, s.numberPrefix])).toEqual([["NL", "+316123"], ["NL", "+316123"], ["NL", "+316123"]]);
    expect(planVerification({ ...base, numberPrefixDigits: 4, destination: { phone: "+31612345678" } }).steps[0]!.numberPrefix).toBe("+3161");
    expect(planVerification({ ...base, destination: { email: "a@example.com" } }).steps[0]!.numberPrefix).toBeUndefined();
  });

  it("uses the first OTP route serving the country, priced per segment", () => {
    const [sms] = planVerification({ ...base, destination: { phone: "+31612345678" } }).steps;
    expect(sms).toMatchObject({ routeId: "nl-sms", unitPriceMicros: 70_000, totalPriceMicros: 70_000, segments: 1, encoding: "GSM7" });
    const [us] = planVerification({ ...base, destination: { phone: "+12025550123" } }).steps;
    expect(us?.routeId).toBe("sandbox-sms");
  });

  it("follows a caller-supplied channel order", () => {
    const plan = planVerification({ ...base, destination: { phone: "+31612345678", email: "a@example.com" }, channelOrder: ["email", "sms"] });
    expect(plan.steps.map((s) => s.channel)).toEqual(["email", "sms"]);
  });

  it.each([
    ["missing", "does not exist"],
    ["promo-sms", "marketing"],
    ["sandbox-email", "email route"],
  ])("refuses a pinned route %s (%s)", (routeId, message) => {
    const overrides = new Map([["sms" as const, { routeId }]]);
    expect(() => planVerification({ ...base, destination: { phone: "+31612345678" }, overrides })).toThrow(message);
  });

  it("takes a sender only from the route's own, the route's list or the caller's list; refuses any other", () => {
    const withSenders: Route = { ...dutchOnly, senders: ["ACMEPAY"] };
    const plan = (sender: string, allowedSenders?: string[]) =>
      planVerification({ ...base, routes: [withSenders], destination: { phone: "+31612345678" }, overrides: new Map([["sms" as const, { sender }]]), ...(allowedSenders ? { allowedSenders } : {}) });
    expect(plan("OTP").steps[0]?.sender).toBe("OTP");
    expect(plan("ACMEPAY").steps[0]?.sender).toBe("ACMEPAY");
    expect(plan("ACMESHOP", ["ACMESHOP"]).steps[0]?.sender).toBe("ACMESHOP");
    expect(() => plan("YOURBANK")).toThrow(PreconditionError);
    expect(() => plan("YOURBANK")).toThrow('sender "YOURBANK" is not allowed on route nl-sms for this caller');
  });

  it("refuses a pinned route that does not serve the country", () => {
    const overrides = new Map([["sms" as const, { routeId: "nl-sms" }]]);
    expect(() => planVerification({ ...base, destination: { phone: "+12025550123" }, overrides })).toThrow(/does not serve US/);
  });

  it("masks addresses", () => {
    const [sms, email] = planVerification({ ...base, destination: { phone: "+31612345678", email: "jane@example.com" } }).steps;
    expect(sms?.addressMasked).toBe("+316*****678");
    expect(email?.addressMasked).toBe("j***@example.com");
  });
});

describe("route choice", () => {
  const second: Route = { ...dutchOnly, id: "nl-sms-2", pricesMicros: { NL: 80_000 } };
  const health = (unhealthy: string[]) => (id: string) => ({ deliveryRate: unhealthy.includes(id) ? 0.2 : 0.95, samples: 100, healthy: !unhealthy.includes(id) });

  it("skips a route below its delivery-rate threshold while a healthier one exists, and says when none is healthy", () => {
    const input = { ...base, routes: [dutchOnly, second, ...SANDBOX_ROUTES], destination: { phone: "+31612345678" } };
    expect(planVerification({ ...input, health: health(["nl-sms"]) }).steps[0]?.routeId).toBe("nl-sms-2");
    const allBad = planVerification({ ...input, routes: [dutchOnly, second], health: health(["nl-sms", "nl-sms-2"]) });
    expect(allBad.steps[0]?.routeId).toBe("nl-sms");
    expect(allBad.warnings.join()).toContain("every route for sms to NL is unhealthy or passed over (route nl-sms passed over: delivery rate 20 % over 100 receipts");
  });

  it("passes over a route whose conversion circuit to the country is open, and probes a half-open one with its share of plans", () => {
    const input = { ...base, routes: [dutchOnly, second], destination: { phone: "+31612345678" } };
    const recent = { sent: 40, approved: 2 };
    const baseline = { sent: 1_000, approved: 880 };
    const circuit = (state: "open" | "half-open", admittedShare: number) => (id: string) =>
      id === "nl-sms"
        ? { deliveryRate: 1, samples: 0, healthy: true, conversion: new Map([["NL", { recent, baseline, circuit: { state, reason: "conversion 5 %" }, admittedShare }]]) }
        : undefined;
    const open = planVerification({ ...input, health: circuit("open", 0), roll: () => 0 });
    expect(open.steps[0]?.routeId).toBe("nl-sms-2");
    expect(open.warnings).toContain("route nl-sms passed over for NL: conversion 5 %");
    // Half-open: plans whose roll falls within the share probe it; the others go on.
    expect(planVerification({ ...input, health: circuit("half-open", 0.1), roll: () => 0.05 }).steps[0]?.routeId).toBe("nl-sms");
    expect(planVerification({ ...input, health: circuit("half-open", 0.1), roll: () => 0.1 }).steps[0]?.routeId).toBe("nl-sms-2");
    // Circuits are per country: a Belgian number still uses it.
    expect(planVerification({ ...input, routes: [{ ...dutchOnly, countries: ["NL", "BE"], pricesMicros: { "*": 70_000 } }], health: circuit("open", 0), destination: { phone: "+32471234567" } }).steps[0]?.routeId).toBe("nl-sms");
  });

  it("leaves out SMS and calls to a number whose prefix is blocked, and keeps the other channels", () => {
    const phoneBlocked = (phone: string) => (phone.startsWith("+316123") ? "numbers starting +316123 are blocked as SMS pumping" : undefined);
    const plan = planVerification({ ...base, phoneBlocked, destination: { phone: "+31612345678", email: "a@example.com" } });
    expect(plan.steps.map((s) => s.channel)).toEqual(["email"]);
    expect(plan.warnings).toEqual(["sms step skipped: numbers starting +316123 are blocked as SMS pumping", "voice step skipped: numbers starting +316123 are blocked as SMS pumping"]);
    expect(planVerification({ ...base, phoneBlocked, destination: { phone: "+31698765432" } }).steps.map((s) => s.channel)).toEqual(["sms", "voice"]);
  });

  it("uses per-country steps and a policy step's own route", () => {
    const policy = {
      ...DEFAULT_POLICY,
      countrySteps: new Map([["NL", [{ channel: "sms" as const, deadlineMs: 5_000, escalateWhen: "undelivered" as const, routeId: "nl-sms-2" }]]]),
    };
    const nl = planVerification({ ...base, policy, routes: [dutchOnly, second, ...SANDBOX_ROUTES], destination: { phone: "+31612345678", email: "a@example.com" } });
    expect(nl.steps.map((s) => [s.channel, s.routeId, s.deadlineMs])).toEqual([["sms", "nl-sms-2", 5_000]]);
    const us = planVerification({ ...base, policy, destination: { phone: "+12025550123", email: "a@example.com" } });
    expect(us.steps.map((s) => s.channel)).toEqual(["sms", "email", "voice"]);
  });

  it("keeps to the caller's allowed routes: others are not chosen, and a pin to one is refused", () => {
    const plan = planVerification({ ...base, allowedRoutes: ["sandbox-sms", "sandbox-email"], destination: { phone: "+31612345678", email: "a@example.com" } });
    expect(plan.steps.map((s) => s.routeId)).toEqual(["sandbox-sms", "sandbox-email"]);
    const overrides = new Map([["sms" as const, { routeId: "nl-sms" }]]);
    expect(() => planVerification({ ...base, allowedRoutes: ["sandbox-sms"], overrides, destination: { phone: "+31612345678" } })).toThrow("not allowed for this caller");
  });
});

describe("planFor", () => {
  const catalogue = { routes: SANDBOX_ROUTES, policies: DEFAULT_POLICIES };

  it("keeps only the channels the caller may use", () => {
    const plan = planFor(catalogue, { id: "c", channels: ["email"] }, { destination: { phone: "+31612345678", email: "a@example.com" }, policy: "", render: {}, codeLength: 6 });
    expect(plan.steps.map((s) => [s.index, s.channel])).toEqual([[0, "email"]]);
  });

  it("refuses premium-rate and VoIP numbers, and countries the caller may not send to, naming them", () => {
    const input = (phone: string) => ({ destination: { phone }, policy: "", render: {}, codeLength: 6 });
    expect(() => planFor(catalogue, { id: "c" }, input("+31906123456"))).toThrow(/premium-rate number/);
    expect(() => planFor(catalogue, { id: "c" }, input("+31858888888"))).toThrow(/VoIP number/);
    expect(() => planFor(catalogue, { id: "c", countries: ["BE"] }, input("+31612345678"))).toThrow("sending to NL is not allowed for caller c");
    expect(planFor(catalogue, { id: "c", countries: ["NL"] }, input("+31612345678")).steps).toHaveLength(2);
  });

  it("fails with a precondition when nothing can be sent or the policy is unknown", () => {
    const input = { destination: { phone: "+31612345678" }, policy: "", render: {}, codeLength: 6 };
    expect(() => planFor(catalogue, { id: "c", channels: ["email"] }, input)).toThrow(PreconditionError);
    expect(() => planFor(catalogue, { id: "c" }, { ...input, policy: "nope" })).toThrow(/policy "nope"/);
    const phoneBlocked = () => "numbers starting +316123 are blocked as SMS pumping";
    expect(() => planFor(catalogue, { id: "c" }, { ...input, destination: { phone: "+31612345678" } }, { phoneBlocked })).toThrow(
      "no step of the plan can be sent: numbers starting +316123 are blocked as SMS pumping",
    );
  });
});
