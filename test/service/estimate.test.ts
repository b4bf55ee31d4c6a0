import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICIES, SANDBOX_ROUTES } from "../../src/config/sandbox-catalogue.js";
import type { Route } from "../../src/domain/route.js";
import { deleteExpiredEstimates } from "../../src/store/repositories/estimates.js";
import { ESTIMATE_TTL_MS, estimateOtp } from "../../src/service/estimate-otp.js";
import { sendOtp } from "../../src/service/send-otp.js";
import type { Db } from "../../src/store/database.js";
import { openBalance } from "../../src/store/repositories/ledger.js";
import { BACKENDS } from "../harness/databases.js";
import { newTrace, pricedRoute, sendCommand, serviceDeps, uniquePhone } from "../harness/service-fixture.js";

const priced = (channel: Route["channel"], micros: number): Route => pricedRoute(channel, micros, "p");
const catalogue = { routes: [priced("sms", 72_000), priced("email", 1_000), priced("voice", 150_000), priced("push", 0)], policies: DEFAULT_POLICIES };

describe.each(BACKENDS)("EstimateOtp on $name", (backend) => {
  let db: Db;
  beforeAll(async () => {
    db = await backend.open();
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it("prices a four-step plan: per step and totals, with the balance and whether it pays the first step", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: `estimator-${backend.name}` };
    await openBalance(db, caller.id, { currency: "EUR", micros: 100_000 }, deps.clock.now());
    const command = sendCommand({ destination: { phone: uniquePhone(), email: "a@example.com", pushToken: "tok" } });
    const estimate = await estimateOtp(deps, caller, command);
    expect(estimate.steps.map((s) => [s.channel, s.routeId, s.totalPriceMicros, s.deadlineMs])).toEqual([
      ["sms", "p-sms", 72_000, 15_000],
      ["email", "p-email", 1_000, 30_000],
      ["voice", "p-voice", 150_000, 30_000],
      ["push", "p-push", 0, 30_000],
    ]);
    expect(estimate).toMatchObject({ currency: "EUR", firstStepMicros: 72_000, worstCaseMicros: 223_000, balance: { currency: "EUR", micros: 100_000 }, sufficientBalance: true });
    expect(estimate.warnings).toContain("balance 0.10 EUR pays the first step but not every fallback step");
    expect(estimate.expiresAt.getTime() - deps.clock.now().getTime()).toBe(ESTIMATE_TTL_MS);

    const poor = { id: `poor-${backend.name}` };
    await openBalance(db, poor.id, { currency: "EUR", micros: 50_000 }, deps.clock.now());
    expect(await estimateOtp(deps, poor, command)).toMatchObject({ sufficientBalance: false });
  });

  it("binds a send to its estimate: the quoted plan holds; another request or an expired estimate is refused", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: `binder-${backend.name}` };
    const command = sendCommand();
    const estimate = await estimateOtp(deps, caller, command);
    // Prices change after the quote: the bound send still uses the quoted plan.
    const repriced = serviceDeps(db, { clock: deps.clock, catalogue: { ...catalogue, routes: [priced("sms", 99_000), ...catalogue.routes] } });
    const sent = await sendOtp(repriced, caller, { ...command, estimateId: estimate.estimateId }, newTrace());
    expect(sent.verification.steps.map((s) => s.totalPriceMicros)).toEqual(estimate.steps.map((s) => s.totalPriceMicros));
    expect(sent.priceQuoted).toEqual({ currency: "EUR", micros: 72_000 });

    await expect(sendOtp(deps, caller, { ...sendCommand(), estimateId: estimate.estimateId }, newTrace())).rejects.toThrow("made for a different request");
    await expect(sendOtp(deps, { id: "someone-else" }, { ...command, estimateId: estimate.estimateId }, newTrace())).rejects.toThrow("unknown or expired");
    deps.clock.advance(ESTIMATE_TTL_MS);
    await expect(sendOtp(deps, caller, { ...command, idempotencyKey: "late", estimateId: estimate.estimateId }, newTrace())).rejects.toThrow("unknown or expired");
  });

  it("a replay of a bound send that succeeded returns the same verification after its estimate expired", async () => {
    const deps = serviceDeps(db, { catalogue });
    const caller = { id: `replayer-${backend.name}` };
    const command = { ...sendCommand(), idempotencyKey: "checkout-42" };
    const estimate = await estimateOtp(deps, caller, command);
    const sent = await sendOtp(deps, caller, { ...command, estimateId: estimate.estimateId }, newTrace());
    deps.clock.advance(ESTIMATE_TTL_MS + 1);
    await deleteExpiredEstimates(db, deps.clock.now());
    const replayed = await sendOtp(deps, caller, { ...command, estimateId: estimate.estimateId }, newTrace());
    expect(replayed.verification.id).toBe(sent.verification.id);
    expect(replayed.firstAttempt.id).toBe(sent.firstAttempt.id);
    // Still one key per request: the same key for another request is refused, not replayed.
    await expect(sendOtp(deps, caller, { ...sendCommand(), idempotencyKey: "checkout-42" }, newTrace())).rejects.toThrow("different request");
  });
});
