import { describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import { PreconditionError } from "../../src/domain/errors.js";
import { DEFAULT_POLICY, planVerification } from "../../src/domain/plan.js";
import type { Route } from "../../src/domain/route.js";
import { planFor } from "../../src/service/plan-request.js";

const marketing: Route = { ...SANDBOX_ROUTES[0]!, id: "promo-sms", trafficClass: "marketing" };
const dutchOnly: Route = { ...SANDBOX_ROUTES[0]!, id: "nl-sms", countries: ["NL"], pricesMicros: { NL: 70_000 } };
const routes = [dutchOnly, ...SANDBOX_ROUTES, marketing];
const base = { policy: DEFAULT_POLICY, routes, render: { brand: "Acme" }, codeLength: 6 };

describe("planVerification", () => {
  it("skips channels without an address, in policy order", () => {
    const plan = planVerification({ ...base, destination: { phone: "+31612345678", email: "a@example.com" } });
    expect(plan.steps.map((s) => s.channel)).toEqual(["sms", "email", "voice"]);
    expect(plan.steps.map((s) => s.index)).toEqual([0, 1, 2]);
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

describe("planFor", () => {
  const catalogue = { routes: SANDBOX_ROUTES, policies: DEFAULT_POLICIES };

  it("keeps only the channels the caller may use", () => {
    const plan = planFor(catalogue, { id: "c", channels: ["email"] }, { destination: { phone: "+31612345678", email: "a@example.com" }, policy: "", render: {}, codeLength: 6 });
    expect(plan.steps.map((s) => [s.index, s.channel])).toEqual([[0, "email"]]);
  });

  it("fails with a precondition when nothing can be sent or the policy is unknown", () => {
    const input = { destination: { phone: "+31612345678" }, policy: "", render: {}, codeLength: 6 };
    expect(() => planFor(catalogue, { id: "c", channels: ["email"] }, input)).toThrow(PreconditionError);
    expect(() => planFor(catalogue, { id: "c" }, { ...input, policy: "nope" })).toThrow(/policy "nope"/);
  });
});
