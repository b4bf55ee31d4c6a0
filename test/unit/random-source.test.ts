import { describe, expect, it } from "vitest";
import { cryptoRandom } from "../../src/domain/ports.js";

describe("cryptoRandom.bytes (drawn from a pool)", () => {
  it("hands every byte out once: no two draws repeat, across pool refills", () => {
    const seen = new Set<string>();
    // 12-byte draws over more than ten pools of 4,096 bytes: a reused pool or offset repeats a draw.
    for (let i = 0; i < 4_000; i++) {
      const bytes = cryptoRandom.bytes(12);
      expect(bytes.length).toBe(12);
      seen.add(bytes.toString("hex"));
    }
    expect(seen.size).toBe(4_000);
  });

  it("gives each caller its own buffer: changing one changes no other draw", () => {
    const first = cryptoRandom.bytes(16);
    const copy = Buffer.from(first);
    const second = cryptoRandom.bytes(16);
    second.fill(0);
    expect(first).toEqual(copy);
    expect(first.buffer === second.buffer && first.byteOffset + 16 > second.byteOffset && second.byteOffset + 16 > first.byteOffset).toBe(false);
  });

  it("serves draws of any size, larger than the pool too", () => {
    for (const length of [0, 1, 8, 4_095, 4_096, 4_097, 10_000]) expect(cryptoRandom.bytes(length).length).toBe(length);
    expect(cryptoRandom.bytes(10_000).equals(cryptoRandom.bytes(10_000))).toBe(false);
  });
});
