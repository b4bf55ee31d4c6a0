import { describe, expect, it } from "vitest";
import { ProviderError } from "../../src/channels/provider.js";
import { scrubProviderCode, scrubProviderText } from "../../src/domain/provider-text.js";

describe("provider text is scrubbed before it is kept", () => {
  it("cuts codes, phone numbers and email addresses out of an echoed request, in any spelling", () => {
    const echoed = 'invalid request {"to":"+31 6 1234 5678","message":"482913 is your Acme code","email":"Jane.Doe@Example.org","voice":"4 8 2 9 1 3"}';
    const clean = scrubProviderText(echoed);
    for (const leak of ["482913", "1234", "5678", "Jane.Doe", "Example.org", "4 8 2 9 1 3"]) expect(clean).not.toContain(leak);
    expect(clean).toContain("is your Acme code");
  });

  it("removes what the caller names wherever it appears, keeps one short line, and drops control characters", () => {
    expect(scrubProviderText("token abcDEF-token-xyz refused", ["abcDEF-token-xyz"])).toBe("token … refused");
    expect(scrubProviderText("line one\nline\u0000two")).toBe("line one line two");
    expect(scrubProviderText("x".repeat(500))).toHaveLength(120);
    expect(scrubProviderText("provider answered 503")).toBe("provider answered 503");
  });

  it("keeps a provider's error code only as an identifier", () => {
    expect(scrubProviderCode("http_503")).toBe("http_503");
    expect(scrubProviderCode("30003")).toBe("30003");
    expect(scrubProviderCode("482913 is your code")).toBe("provider_error");
  });

  it("applies to every ProviderError, so neither logs nor the store see the raw text", () => {
    const error = new ProviderError("provider answered 400: bad number +31612345678 for code 482913", false, "http_400");
    expect(error.message).toBe("provider answered 400: bad number … for code …");
  });
});
