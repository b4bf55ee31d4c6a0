import { describe, expect, it } from "vitest";
import { allowedNumber, DEFAULT_PUMPING, pumpingVerdict } from "../../src/domain/pumping.js";

const counts = (own: [number, number], quiet: [number, number], prefix = "+316123") => ({
  prefix,
  country: "NL",
  own: { sent: own[0], approved: own[1] },
  quiet: { sent: quiet[0], approved: quiet[1] },
});

describe("pumping verdict", () => {
  it("flags a prefix with enough sends converting far below the rest of its country, and says so", () => {
    expect(pumpingVerdict(counts([40, 2], [200, 170]), DEFAULT_PUMPING)).toBe(
      "40 sends and 2 approvals in 10 min (conversion 5 %; the rest of NL 85 %)",
    );
    // Under the volume floor, or converting like the rest (within a quarter of it): nothing.
    expect(pumpingVerdict(counts([29, 0], [200, 170]), DEFAULT_PUMPING)).toBeUndefined();
    expect(pumpingVerdict(counts([40, 10], [200, 180]), DEFAULT_PUMPING)).toBeUndefined();
  });

  it("compares with 100 % while the rest of the country sent too little, and never flags an allowed prefix", () => {
    expect(pumpingVerdict(counts([40, 9], [29, 29]), DEFAULT_PUMPING)).toBe("40 sends and 9 approvals in 10 min (conversion 23 %; too little other traffic to compare)");
    expect(pumpingVerdict(counts([40, 10], [29, 0]), DEFAULT_PUMPING)).toBeUndefined();
    const allow = { ...DEFAULT_PUMPING, allow: ["+3161"] };
    expect(pumpingVerdict(counts([40, 0], [240, 170]), allow)).toBeUndefined();
    expect(allowedNumber("+31612345678", allow)).toBe(true);
    expect(allowedNumber("+31712345678", allow)).toBe(false);
  });
});
