import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { withTimeLimit } from "../../src/util/time-limit.js";

describe("withTimeLimit", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("aborts the work's signal with a TimeoutError when the limit passes", async () => {
    let seen: AbortSignal | undefined;
    const running = withTimeLimit(500, (signal) => {
      seen = signal;
      return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    });
    const outcome = running.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(499);
    expect(seen!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen!.aborted).toBe(true);
    expect(await outcome).toMatchObject({ name: "TimeoutError" });
  });

  it("clears its timer as soon as the work settles, answered or failed, and never aborts it afterwards", async () => {
    let answered: AbortSignal | undefined;
    await expect(withTimeLimit(10_000, async (signal) => ((answered = signal), "id-1"))).resolves.toBe("id-1");
    expect(vi.getTimerCount()).toBe(0);
    await expect(withTimeLimit(10_000, () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(answered!.aborted).toBe(false);
  });
});
