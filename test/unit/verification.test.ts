import { describe, expect, it } from "vitest";
import { effectiveStatus, outcomeBeforeCodeCheck, remainingAttempts, type VerificationCheckState } from "../../src/domain/verification.js";

const now = new Date("2026-11-22T10:00:00Z");
const pending: VerificationCheckState = { status: "PENDING", expiresAt: new Date(now.getTime() + 60_000), failedAttempts: 0, maxAttempts: 5 };

describe("verify rules before the code is compared", () => {
  it("compares the code of a pending, unexpired verification under its limit", () => {
    expect(outcomeBeforeCodeCheck(pending, now)).toBeUndefined();
  });

  it.each([
    [{ status: "APPROVED" }, "ALREADY_APPROVED"],
    [{ status: "CANCELED" }, "CANCELED"],
    [{ status: "MAX_ATTEMPTS" }, "MAX_ATTEMPTS"],
    [{ failedAttempts: 5 }, "MAX_ATTEMPTS"],
    [{ expiresAt: now }, "EXPIRED"],
  ] as const)("%o → %s", (change, outcome) => {
    expect(outcomeBeforeCodeCheck({ ...pending, ...change }, now)).toBe(outcome);
  });

  it("treats a pending verification at or past its expiry as expired", () => {
    expect(effectiveStatus({ ...pending, expiresAt: now }, now)).toBe("EXPIRED");
    expect(effectiveStatus(pending, now)).toBe("PENDING");
  });

  it("counts remaining attempts down to zero, never below", () => {
    expect(remainingAttempts({ failedAttempts: 2, maxAttempts: 5 })).toBe(3);
    expect(remainingAttempts({ failedAttempts: 7, maxAttempts: 5 })).toBe(0);
  });
});
