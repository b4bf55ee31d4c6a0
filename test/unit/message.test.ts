import { describe, expect, it } from "vitest";
import { groupDigits, renderEmail, renderSms, renderVoice } from "../../src/domain/message.js";
import { smsSize } from "../../src/domain/sms-text.js";

describe("smsSize", () => {
  it("counts GSM-7 septets, extension characters as two", () => {
    expect(smsSize("a".repeat(160))).toEqual({ encoding: "GSM7", units: 160, segments: 1 });
    expect(smsSize("a".repeat(161))).toEqual({ encoding: "GSM7", units: 161, segments: 2 });
    expect(smsSize("€".repeat(80))).toEqual({ encoding: "GSM7", units: 160, segments: 1 });
    expect(smsSize("a".repeat(307)).segments).toBe(3); // 153 per part
  });

  it("falls back to UCS-2 for characters outside GSM-7", () => {
    expect(smsSize("код 123456")).toEqual({ encoding: "UCS2", units: 10, segments: 1 });
    expect(smsSize("ü".repeat(10) + "ł".repeat(61)).segments).toBe(2);
  });
});

describe("renderSms", () => {
  it("puts the origin-bound code on the last line, exactly '@domain #code'", () => {
    const sms = renderSms("747723", { brand: "Acme", originDomain: "example.com" });
    expect(sms.text).toBe("747723 is your Acme verification code.\n@example.com #747723");
    expect(sms.text.split("\n").at(-1)).toBe("@example.com #747723");
    expect(sms).toMatchObject({ encoding: "GSM7", segments: 1, warnings: [] });
  });

  it("puts the Android app hash on its own line, before the origin line", () => {
    const sms = renderSms("123456", { originDomain: "example.com", androidAppHash: "FA+9qCX9VSu" });
    expect(sms.text.split("\n")).toEqual(["123456 is your verification code.", "FA+9qCX9VSu", "@example.com #123456"]);
  });

  it("shortens a brand that would push the message past one segment, and says so", () => {
    const sms = renderSms("123456", { brand: "Ünïcödé Brand Name That Is Long", originDomain: "very-long-subdomain.example.com" });
    expect(sms.segments).toBe(1);
    expect(sms.warnings.some((w) => w.includes("one SMS segment"))).toBe(true);
  });
});

describe("SMS for phones", () => {
  it("names an embedded page's origin as the third part of the last line", () => {
    const sms = renderSms("747723", { originDomain: "example.com", embeddedOriginDomain: "pay.example" });
    expect(sms.text.split("\n").at(-1)).toBe("@example.com #747723 @pay.example");
  });

  it("keeps a message with the Android hash within one segment, 140 bytes, by shortening the brand", () => {
    const sms = renderSms("48213907", { brand: "A Very Long Brand Name Indeed", originDomain: "accounts.example-company.com", androidAppHash: "FA+9qCX9VSu" });
    expect(sms.segments).toBe(1);
    expect(sms.encoding).toBe("GSM7");
    expect(Buffer.byteLength(sms.text, "utf8")).toBeLessThanOrEqual(140);
    expect(sms.text.split("\n")).toEqual([expect.stringMatching(/^48213907 is your .* verification code\.$/), "FA+9qCX9VSu", "@accounts.example-company.com #48213907"]);
  });

  it("warns when even without a brand the message needs two segments, naming the SMS Retriever limit", () => {
    const sms = renderSms("123456", { originDomain: `${"x".repeat(60)}.${"y".repeat(60)}.example.com`, androidAppHash: "FA+9qCX9VSu" });
    expect(sms.segments).toBe(2);
    expect(sms.warnings.at(-1)).toContain("140 bytes");
  });
});

describe("other channels", () => {
  it("groups digits for reading", () => {
    expect(groupDigits("123456")).toBe("123 456");
    expect(groupDigits("12345678")).toBe("1234 5678");
    expect(groupDigits("12345")).toBe("123 45");
  });

  it("email has the code in the subject and grouped in text and HTML", () => {
    const email = renderEmail("123456", { brand: "Acme" });
    expect(email.subject).toContain("123456");
    expect(email.text).toContain("123 456");
    expect(email.html).toContain("123 456");
  });

  it("voice says the digits one by one, twice", () => {
    expect(renderVoice("1234", {}).match(/1, 2, 3, 4/g)).toHaveLength(2);
  });
});
