import { describe, expect, it } from "vitest";
import { isE164, phoneCountry, refusedNumberKind } from "../../src/domain/destination.js";

// destination.ts keeps the last number it parsed: answers about one number must never leak to the next.
describe("phone number answers, asked in any order", () => {
  const mobileNl = "+31612345678";
  const premiumNl = "+31906123456";
  const mobileDe = "+4915112345678";
  const tooShort = "+3161234567";

  it("answers each number for itself when questions about several numbers interleave", () => {
    for (let round = 0; round < 2; round++) {
      expect(refusedNumberKind(premiumNl)).toBe("premium-rate");
      expect(refusedNumberKind(mobileNl)).toBeUndefined();
      expect(isE164(tooShort)).toBe(false);
      expect(isE164(mobileNl)).toBe(true);
      expect(phoneCountry(mobileDe)).toBe("DE");
      expect(isE164(mobileDe)).toBe(true);
      expect(refusedNumberKind(premiumNl)).toBe("premium-rate");
      expect(phoneCountry(premiumNl)).toBe("NL");
      expect(isE164(tooShort)).toBe(false);
      expect(refusedNumberKind(tooShort)).toBeUndefined();
    }
  });

  it("asks the same number several questions in a row, as one send does", () => {
    expect(isE164(premiumNl)).toBe(true);
    expect(phoneCountry(premiumNl)).toBe("NL");
    expect(refusedNumberKind(premiumNl)).toBe("premium-rate");
    expect(refusedNumberKind(premiumNl)).toBe("premium-rate");
    expect(isE164("+999123")).toBe(false);
    expect(phoneCountry("+999123456789")).toBeUndefined();
  });
});
