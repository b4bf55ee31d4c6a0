import { describe, expect, it } from "vitest";
import { generateCode } from "../../src/domain/code.js";
import { CodeProtector } from "../../src/domain/code-protector.js";
import { cryptoRandom } from "../../src/domain/ports.js";
import { scriptedRandom } from "../harness/fakes.js";

describe("generateCode", () => {
  it("draws one number below 10^length and keeps leading zeros", () => {
    const random = scriptedRandom(42);
    expect(generateCode(6, random)).toBe("000042");
    expect(random.calls).toEqual([1_000_000]);
  });

  it("makes codes of every allowed length from the CSPRNG", () => {
    for (let length = 4; length <= 10; length++) expect(generateCode(length, cryptoRandom)).toMatch(new RegExp(`^\\d{${length}}$`));
  });

  it("refuses lengths outside 4–10", () => {
    expect(() => generateCode(3, cryptoRandom)).toThrow(RangeError);
    expect(() => generateCode(11, cryptoRandom)).toThrow(RangeError);
  });
});

describe("CodeProtector", () => {
  const protector = new CodeProtector({ hashKey: Buffer.alloc(32, 1), sealKey: Buffer.alloc(32, 2) }, cryptoRandom);

  it("checks the right code and rejects a wrong one", () => {
    const hash = protector.hash("vrf_a", "123456");
    expect(protector.matches("vrf_a", "123456", hash)).toBe(true);
    expect(protector.matches("vrf_a", "123457", hash)).toBe(false);
  });

  it("binds the hash to its verification", () => {
    expect(protector.matches("vrf_b", "123456", protector.hash("vrf_a", "123456"))).toBe(false);
  });

  it("depends on the key: another key gives another hash", () => {
    const other = new CodeProtector({ hashKey: Buffer.alloc(32, 9), sealKey: Buffer.alloc(32, 2) }, cryptoRandom);
    expect(other.hash("vrf_a", "123456")).not.toBe(protector.hash("vrf_a", "123456"));
  });

  it("seals and opens a code, without the code in the sealed text", () => {
    const sealed = protector.seal("vrf_a", "123456");
    expect(sealed).not.toContain("123456");
    expect(protector.unseal("vrf_a", sealed)).toBe("123456");
    expect(protector.seal("vrf_a", "123456")).not.toBe(sealed); // fresh IV each time
  });

  it("refuses to open a sealed code on another verification or after tampering", () => {
    const sealed = protector.seal("vrf_a", "123456");
    expect(() => protector.unseal("vrf_b", sealed)).toThrow();
    const parts = sealed.split(".");
    parts[2] = Buffer.from("999999").toString("base64url");
    expect(() => protector.unseal("vrf_a", parts.join("."))).toThrow();
  });

  it("requires 32-byte keys", () => {
    expect(() => new CodeProtector({ hashKey: Buffer.alloc(16), sealKey: Buffer.alloc(32) }, cryptoRandom)).toThrow(/hashKey/);
  });
});
