import { describe, expect, it } from "vitest";
import type { RunRecord, Take, UserRecord } from "../../sim/records.js";
import { buildReport, renderMarkdown } from "../../sim/report.js";

const sms = (at: number, arrivesAt?: number, routeId = "sms-nl"): Take => ({ channel: "sms", routeId, priceEur: 0.07, at, ...(arrivesAt !== undefined ? { arrivesAt } : {}) });
const email = (at: number, arrivesAt?: number): Take => ({ channel: "email", routeId: "email-otp", priceEur: 0.001, at, ...(arrivesAt !== undefined ? { arrivesAt } : {}) });
const user = (id: number, cohort: string, fields: Partial<UserRecord>): UserRecord => ({
  id,
  cohort,
  warmUp: false,
  requestedAt: 0,
  takes: [],
  sent: { verificationId: `v${id}`, firstRouteId: cohort === "de" ? "sms-de-a" : `sms-${cohort}` },
  ...fields,
});

const run: RunRecord = {
  mode: "ci",
  seed: 1,
  variant: "auto",
  warmUpMs: 1_000,
  degrade: { atMs: 10_000, routeId: "sms-de-a", backupRouteId: "sms-de-b" },
  durationMs: 90_000,
  users: [
    // SMS lost, email 3 s later arrives at 4 s: held at 4 s, verified at 12 s.
    user(1, "nl", { requestedAt: 2_000, takes: [sms(2_100), email(5_100, 6_000)], holdAt: 6_000, holdChannel: "email", verifiedAt: 14_000 }),
    // SMS arrived at once, but the receipt was late: the email 15 s later was needless.
    user(2, "be", { requestedAt: 2_000, takes: [sms(2_050, 2_500, "sms-be"), email(17_050, 18_000)], holdAt: 2_500, holdChannel: "sms", verifiedAt: 30_000 }),
    // Two SMS for one verification: a duplicate (and, the first having arrived, needless too).
    user(3, "nl", { requestedAt: 3_000, takes: [sms(3_000, 4_000), sms(5_000, 6_000)], holdAt: 4_000, holdChannel: "sms", verifiedAt: 90_000 }),
    // Warm-up: a duplicate counts, its times do not.
    user(4, "de", { requestedAt: 0, warmUp: true, takes: [sms(0, 500, "sms-de-a"), sms(100, 600, "sms-de-a")], holdAt: 500, verifiedAt: 5_000 }),
    // Refused: a legitimate user affected.
    { id: 5, cohort: "nl", warmUp: false, requestedAt: 4_000, takes: [], refused: "too many codes" },
    // Nothing reached them.
    user(6, "de", { requestedAt: 11_000, takes: [sms(11_000, undefined, "sms-de-a")] }),
    // After the DE incident, a plan on the healthy route: passed over 15 s after the drop.
    user(7, "de", { requestedAt: 25_000, sent: { verificationId: "v7", firstRouteId: "sms-de-b" }, takes: [sms(25_000, 26_000, "sms-de-b")], holdAt: 26_000, verifiedAt: 33_000 }),
  ],
  attack: { prefix: "+316555", requests: 10, refused: 7, firstRefusedAt: 4_000, firstRefusal: "blocked", takes: [sms(100), sms(200), sms(300)] },
};

describe("the simulation's report", () => {
  const report = buildReport(run);

  it("measures time to hold a code over users after the warm-up, refused and empty-handed ones included", () => {
    expect(report.measured.users).toBe(6);
    expect(report.measured.held).toBeCloseTo(4 / 6);
    // Waits: 0.5 s, 1 s, 1 s, 4 s; within 10 s: all four of six.
    expect(report.measured.within10s).toBeCloseTo(4 / 6);
    expect([report.measured.p50Ms, report.measured.maxMs]).toEqual([1_000, 4_000]);
    expect(report.measured.verifiedWithin20s).toBeCloseTo(2 / 6); // users 1 (12 s) and 7 (8 s)
    expect(report.measured.verifiedWithin60s).toBeCloseTo(3 / 6); // and user 2 (28 s)
    expect(report.byCohort.nl).toMatchObject({ users: 3, held: 2 / 3, smsAndEmailLost: 0 });
  });

  it("counts duplicate sends per channel per verification, and fallback sends after an earlier message had arrived", () => {
    expect(report.duplicateSends).toBe(2); // user 3's second SMS, user 4's second SMS
    expect(report.byCohort.be).toMatchObject({ needlessFallbackSends: 1, needlessFallbackShare: 1 });
    expect(report.byCohort.nl!.needlessFallbackSends).toBe(1); // user 3's second SMS; user 1's email followed a lost SMS
  });

  it("counts the people whose SMS and email were both lost (the call is their first code)", () => {
    const voice: Take = { channel: "voice", routeId: "voice-otp", priceEur: 0.15, at: 25_000, arrivesAt: 29_000 };
    const unlucky = user(8, "nl", { requestedAt: 2_000, takes: [sms(2_000), email(5_000), voice], holdAt: 29_000, holdChannel: "voice" });
    expect(buildReport({ ...run, users: [...run.users, unlucky] }).byCohort.nl).toMatchObject({ smsAndEmailLost: 1, needlessFallbackSends: 1 });
  });

  it("reports the attack's cost, the legitimate users affected, the incident's pass-over and the cost per approval", () => {
    expect(report.attack).toEqual({ requests: 10, smsSent: 3, spentEur: 0.21, firstRefusalAfterMs: 4_000, firstRefusal: "blocked" });
    expect(report.legitimateAffected).toEqual({ users: 1, share: 1 / 6, reasons: ["too many codes"] });
    expect(report.degradedRoutePassedOverAfterMs).toBe(15_000);
    const spent = 0.21 + 0.07 * 8 + 0.001 * 2;
    expect(report.cost).toEqual({ totalEur: Math.round(spent * 1e4) / 1e4, attackEur: 0.21, approvals: 5, perApprovalEur: Math.round((spent / 5) * 1e4) / 1e4 });
  });

  it("judges each target and renders them with every measure as Markdown", () => {
    expect(report.targets.map((t) => [t.name.slice(0, 30), t.met])).toEqual([
      ["people holding a valid code wi", false],
      ["duplicate sends on any channel", false],
      ["needless fallback sends, recei", false],
      ["SMS sent to the attacked prefi", true],
      ["legitimate users of other pref", false],
      ["degraded DE route passed over ", true],
    ]);
    const markdown = renderMarkdown([{ ...report, variant: "fixed" }, report]);
    expect(markdown).toContain("| measure | deadline 15 s | deadline auto |");
    expect(markdown).toContain("| attack: requests / SMS sent before the block / spent | 10 / 3 / 0.21 EUR | 10 / 3 / 0.21 EUR |");
    expect(markdown).toContain("| degraded route passed over after | 15.0 s | 15.0 s |");
  });
});
