import { describe, expect, it } from "vitest";
import { admittedShare, CLOSED, DEFAULT_CONVERSION, distrustedSends, nextCircuit, NO_CONVERSIONS, type ConversionObservation, type RouteCircuit } from "../../src/domain/conversion.js";

const settings = DEFAULT_CONVERSION;
const at = (s: number) => new Date(Date.UTC(2026, 11, 3, 12, 0, s));
const seen = (recent: [number, number], baseline: [number, number], probes: [number, number] = [0, 0]): ConversionObservation => ({
  recent: { sent: recent[0], approved: recent[1] },
  baseline: { sent: baseline[0], approved: baseline[1] },
  probes: { sent: probes[0], approved: probes[1] },
});

describe("conversion circuit", () => {
  it("opens when recent conversion falls under half its baseline, with enough sends on both sides, and says why", () => {
    expect(nextCircuit(CLOSED, seen([40, 18], [1_000, 880]), settings, at(0))).toBe(CLOSED); // 45 % vs 88 %: above 44 %
    expect(nextCircuit(CLOSED, seen([19, 0], [1_000, 880]), settings, at(0))).toBe(CLOSED); // too few recent sends
    expect(nextCircuit(CLOSED, seen([40, 0], [19, 19]), settings, at(0))).toBe(CLOSED); // no baseline yet
    const open = nextCircuit(CLOSED, seen([40, 17], [1_000, 880]), settings, at(0));
    expect(open).toEqual({
      state: "open",
      reason: "conversion 43 % over the last 2 min (40 sends) against 88 % before",
      retryAt: new Date(at(0).getTime() + settings.coolOffMs),
      // The drop was measured on the recent window's sends: their receipts no longer count.
      distrustSince: new Date(at(0).getTime() - settings.recentWindowMs),
    });
    expect(admittedShare(open, settings)).toBe(0);
    expect(distrustedSends(open)).toEqual({ since: new Date(at(0).getTime() - settings.recentWindowMs) });
    expect(distrustedSends(CLOSED)).toBeUndefined();
  });

  it("probes after the cool-off, stops probing once enough probes went out, and judges them after they settled", () => {
    const open: RouteCircuit = { state: "open", reason: "conversion 0 %", retryAt: at(300), distrustSince: at(-120) };
    expect(nextCircuit(open, seen([0, 0], [1_000, 880]), settings, at(299))).toBe(open);
    const halfOpen = nextCircuit(open, seen([0, 0], [1_000, 880]), settings, at(300));
    expect(halfOpen).toEqual({ state: "half-open", reason: "conversion 0 %; probing with 10 % of traffic", probingSince: at(300), distrustSince: at(-120) });
    expect(admittedShare(halfOpen, settings)).toBe(0.1);
    // The probes' own receipts stand until they are judged; the sends before the opening stay distrusted.
    expect(distrustedSends(halfOpen)).toEqual({ since: at(-120), until: at(300) });

    expect(nextCircuit(halfOpen, seen([0, 0], [1_000, 880], [19, 19]), settings, at(400))).toBe(halfOpen);
    const judging = nextCircuit(halfOpen, seen([0, 0], [1_000, 880], [20, 10]), settings, at(400));
    expect(judging).toMatchObject({ state: "half-open", probesSentAt: at(400) });
    expect(admittedShare(judging, settings)).toBe(0);
    // Approvals of the last probes have a minute to arrive.
    expect(nextCircuit(judging, seen([0, 0], [1_000, 880], [20, 10]), settings, at(459))).toBe(judging);
    expect(nextCircuit(judging, seen([0, 0], [1_000, 880], [20, 18]), settings, at(460))).toBe(CLOSED);
    const reopened = nextCircuit(judging, seen([0, 0], [1_000, 880], [20, 5]), settings, at(460));
    // Probes that did not convert are what the circuit reopens on: from then on their receipts do not count.
    expect(reopened).toEqual({
      state: "open",
      reason: "probes converted 25 % (20 sends) against 88 % before",
      retryAt: new Date(at(460).getTime() + settings.coolOffMs),
      distrustSince: at(300),
    });
    expect(distrustedSends(reopened)).toEqual({ since: at(300) });
  });

  it("never opens on a route that converts nothing, ever, before it was measured", () => {
    expect(nextCircuit(CLOSED, { recent: { sent: 50, approved: 0 }, baseline: NO_CONVERSIONS, probes: NO_CONVERSIONS }, settings, at(0))).toBe(CLOSED);
  });
});
