import { describe, expect, it } from "vitest";
import { decideSend } from "../../src/domain/send-intent.js";

const now = new Date("2026-11-22T10:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms);

describe("decideSend", () => {
  it("sends when no earlier call is on record", () => {
    expect(decideSend(null, now, 10_000, false)).toEqual({ kind: "send" });
  });

  it("waits while an earlier call may still be running, for the rest of its timeout plus a second", () => {
    expect(decideSend(ago(4_000), now, 10_000, true)).toEqual({ kind: "wait", delayMs: 7_000 });
  });

  it("after the earlier call is surely over: sends again to an idempotent provider, gives up on any other", () => {
    expect(decideSend(ago(11_000), now, 10_000, true)).toEqual({ kind: "send" });
    expect(decideSend(ago(11_000), now, 10_000, false)).toEqual({ kind: "give-up" });
  });
});
