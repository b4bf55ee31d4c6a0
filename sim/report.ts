import type { RunRecord, SimChannel, UserRecord } from "./records.js";

export interface TimeToCode {
  readonly users: number;
  /** Share of users who held a valid code at all, and within 10 s of asking. */
  readonly held: number;
  readonly within10s: number;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Share verified within 20 s and 60 s of asking. */
  readonly verifiedWithin20s: number;
  readonly verifiedWithin60s: number;
  /** Fallback sends while an earlier message of the same verification had already arrived, per verification. */
  readonly needlessFallbackShare: number;
  readonly needlessFallbackSends: number;
  /** People whose SMS and then email were both lost: no SMS deadline helps them, the call comes after the email's. */
  readonly smsAndEmailLost: number;
}

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly value: string;
  readonly met: boolean;
}

export interface Report {
  readonly mode: RunRecord["mode"];
  readonly seed: number;
  readonly variant: RunRecord["variant"];
  readonly durationS: number;
  /** Users asking after the warm-up. */
  readonly measured: TimeToCode;
  readonly byCohort: Readonly<Record<string, TimeToCode>>;
  /** Sends beyond the first per channel per verification (every user's, warm-up included). */
  readonly duplicateSends: number;
  readonly attack: {
    readonly requests: number;
    /** SMS providers took for the attacked prefix: what the attack cost before it was stopped. */
    readonly smsSent: number;
    readonly spentEur: number;
    readonly firstRefusalAfterMs: number | null;
    readonly firstRefusal: string | null;
  };
  /** Legitimate users (other prefixes, after the warm-up) refused or planned without SMS. */
  readonly legitimateAffected: { readonly users: number; readonly share: number; readonly reasons: readonly string[] };
  /** The DE incident: how long after it began new DE plans were given the healthy route; null if never in the run. */
  readonly degradedRoutePassedOverAfterMs: number | null | undefined;
  readonly cost: { readonly totalEur: number; readonly attackEur: number; readonly approvals: number; readonly perApprovalEur: number | null };
  readonly targets: readonly Target[];
}

/** The measures and targets of issue #13, from what a run recorded. */
export function buildReport(run: RunRecord): Report {
  const measuredUsers = run.users.filter((u) => !u.warmUp);
  const cohorts = [...new Set(run.users.map((u) => u.cohort))];
  const byCohort = Object.fromEntries(cohorts.map((c) => [c, timeToCode(measuredUsers.filter((u) => u.cohort === c))]));
  const measured = timeToCode(measuredUsers);
  const duplicateSends = run.users.reduce((sum, u) => sum + duplicates(u), 0);
  const attackSms = run.attack.takes.filter((t) => t.channel === "sms");
  const attackEur = sumEur(run.attack.takes);
  const affected = measuredUsers.filter((u) => u.refused !== undefined || (u.sent !== undefined && !u.sent.firstRouteId.startsWith("sms-")));
  const approvals = run.users.filter((u) => u.verifiedAt !== undefined).length;
  const totalEur = run.users.reduce((sum, u) => sum + sumEur(u.takes), 0) + attackEur;
  const report: Omit<Report, "targets"> = {
    mode: run.mode,
    seed: run.seed,
    variant: run.variant,
    durationS: Math.round(run.durationMs / 1000),
    measured,
    byCohort,
    duplicateSends,
    attack: {
      requests: run.attack.requests,
      smsSent: attackSms.length,
      spentEur: round(attackEur, 4),
      firstRefusalAfterMs: run.attack.firstRefusedAt ?? null,
      firstRefusal: run.attack.firstRefusal ?? null,
    },
    legitimateAffected: {
      users: affected.length,
      share: share(affected.length, measuredUsers.length),
      reasons: [...new Set(affected.map((u) => u.refused ?? `first step on ${u.sent!.firstRouteId}`))].slice(0, 5),
    },
    degradedRoutePassedOverAfterMs: run.degrade ? passedOverAfter(run) : undefined,
    cost: { totalEur: round(totalEur, 4), attackEur: round(attackEur, 4), approvals, perApprovalEur: approvals ? round(totalEur / approvals, 4) : null },
  };
  return { ...report, targets: targets(report) };
}

function timeToCode(users: readonly UserRecord[]): TimeToCode {
  const waits = users.filter((u) => u.holdAt !== undefined).map((u) => u.holdAt! - u.requestedAt).sort((a, b) => a - b);
  const verifiedWithin = (ms: number) => share(users.filter((u) => u.verifiedAt !== undefined && u.verifiedAt - u.requestedAt <= ms).length, users.length);
  const needless = users.reduce((sum, u) => sum + needlessFallbacks(u), 0);
  return {
    users: users.length,
    held: share(waits.length, users.length),
    within10s: share(waits.filter((w) => w <= 10_000).length, users.length),
    p50Ms: percentile(waits, 0.5),
    p95Ms: percentile(waits, 0.95),
    p99Ms: percentile(waits, 0.99),
    maxMs: waits.at(-1) ?? null,
    verifiedWithin20s: verifiedWithin(20_000),
    verifiedWithin60s: verifiedWithin(60_000),
    needlessFallbackSends: needless,
    needlessFallbackShare: share(needless, users.length),
    smsAndEmailLost: users.filter((u) => lost(u, "sms") && lost(u, "email")).length,
  };
}

function lost(user: UserRecord, channel: SimChannel): boolean {
  return user.takes.some((t) => t.channel === channel && t.arrivesAt === undefined);
}

/** Messages on a channel the verification had already been sent on (each user has one verification). */
function duplicates(user: UserRecord): number {
  const perChannel = new Map<SimChannel, number>();
  for (const take of user.takes) perChannel.set(take.channel, (perChannel.get(take.channel) ?? 0) + 1);
  return [...perChannel.values()].reduce((sum, n) => sum + n - 1, 0);
}

/** Later messages taken while an earlier one had already reached the person. */
function needlessFallbacks(user: UserRecord): number {
  const takes = [...user.takes].sort((a, b) => a.at - b.at);
  return takes.filter((take, i) => takes.slice(0, i).some((earlier) => earlier.arrivesAt !== undefined && earlier.arrivesAt <= take.at)).length;
}

/** From the incident to the first plan after it that starts on the healthy route. */
function passedOverAfter(run: RunRecord): number | null {
  const { atMs, backupRouteId } = run.degrade!;
  const moved = run.users.filter((u) => u.requestedAt >= atMs && u.sent?.firstRouteId === backupRouteId).map((u) => u.requestedAt);
  return moved.length === 0 ? null : Math.min(...moved) - atMs;
}

function targets(r: Omit<Report, "targets">): Target[] {
  const list: Target[] = [];
  const nl = r.byCohort.nl;
  if (nl) list.push({ name: "people holding a valid code within 10 s, SMS route losing 30 % (NL)", target: "≥ 99 %", value: pct(nl.within10s), met: nl.within10s >= 0.99 });
  list.push({ name: "duplicate sends on any channel of a verification", target: "0", value: String(r.duplicateSends), met: r.duplicateSends === 0 });
  const be = r.byCohort.be;
  if (be) list.push({ name: "needless fallback sends, receipts late but messages arriving (BE)", target: "< 5 %", value: pct(be.needlessFallbackShare), met: be.needlessFallbackShare < 0.05 });
  list.push({ name: "SMS sent to the attacked prefix before it was blocked", target: "< 200", value: String(r.attack.smsSent), met: r.attack.smsSent < 200 && r.attack.firstRefusalAfterMs !== null });
  list.push({ name: "legitimate users of other prefixes affected", target: "< 1 %", value: pct(r.legitimateAffected.share), met: r.legitimateAffected.share < 0.01 });
  if (r.degradedRoutePassedOverAfterMs !== undefined) {
    const after = r.degradedRoutePassedOverAfterMs;
    list.push({ name: "degraded DE route passed over after its drop", target: "< 120 s", value: after === null ? "not in the run" : `${Math.round(after / 1000)} s`, met: after !== null && after < 120_000 });
  }
  return list;
}

/** The reports as a Markdown table: one column per run (e.g. a fixed 15 s deadline, then `auto`). */
export function renderMarkdown(reports: readonly Report[]): string {
  const head = `| measure | ${reports.map((r) => `deadline ${r.variant === "auto" ? "auto" : "15 s"}`).join(" | ")} |`;
  const rule = `|---|${reports.map(() => "---").join("|")}|`;
  const row = (name: string, value: (r: Report) => string) => `| ${name} | ${reports.map(value).join(" | ")} |`;
  const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? "—" : `${(ms / 1000).toFixed(1)} s`);
  const lines = [
    `Simulation \`${reports[0]!.mode}\`, seed ${reports[0]!.seed}: ${reports[0]!.measured.users} users measured after the warm-up.`,
    "",
    head,
    rule,
    row("time to hold a code: p50 / p95 / p99 / max", (r) => [r.measured.p50Ms, r.measured.p95Ms, r.measured.p99Ms, r.measured.maxMs].map(seconds).join(" / ")),
    row("held a code within 10 s (all)", (r) => pct(r.measured.within10s)),
  ];
  for (const cohort of Object.keys(reports[0]!.byCohort)) {
    const of = (r: Report) => r.byCohort[cohort]!;
    lines.push(row(`… ${cohort.toUpperCase()}: within 10 s / at all / p95`, (r) => `${pct(of(r).within10s)} / ${pct(of(r).held)} / ${seconds(of(r).p95Ms)}`));
  }
  lines.push(
    row("… people whose SMS and email were both lost", (r) => String(r.measured.smsAndEmailLost)),
    row("verified within 20 s / 60 s", (r) => `${pct(r.measured.verifiedWithin20s)} / ${pct(r.measured.verifiedWithin60s)}`),
    row("needless fallback sends per verification (all)", (r) => pct(r.measured.needlessFallbackShare)),
  );
  for (const cohort of Object.keys(reports[0]!.byCohort)) {
    lines.push(row(`… ${cohort.toUpperCase()}`, (r) => `${pct(r.byCohort[cohort]!.needlessFallbackShare)} (${r.byCohort[cohort]!.needlessFallbackSends})`));
  }
  lines.push(
    row("duplicate sends per channel per verification", (r) => String(r.duplicateSends)),
    row("attack: requests / SMS sent before the block / spent", (r) => `${r.attack.requests} / ${r.attack.smsSent} / ${r.attack.spentEur.toFixed(2)} EUR`),
    row("attack: first refusal after", (r) => seconds(r.attack.firstRefusalAfterMs)),
    row("legitimate users affected", (r) => `${r.legitimateAffected.users} (${pct(r.legitimateAffected.share)})`),
    row("degraded route passed over after", (r) => passedOverText(r.degradedRoutePassedOverAfterMs)),
    row("cost per approval (attack included) / approvals", (r) => `${r.cost.perApprovalEur?.toFixed(4) ?? "—"} EUR / ${r.cost.approvals}`),
    "",
    "| target | " + reports.map((r) => `deadline ${r.variant === "auto" ? "auto" : "15 s"}`).join(" | ") + " |",
    rule,
  );
  for (const [i, target] of reports[0]!.targets.entries()) {
    lines.push(`| ${target.name} (${target.target}) | ${reports.map((r) => `${r.targets[i]!.value} ${r.targets[i]!.met ? "✓" : "✗"}`).join(" | ")} |`);
  }
  return `${lines.join("\n")}\n`;
}

function passedOverText(ms: number | null | undefined): string {
  if (ms === undefined) return "not in this mode";
  return ms === null ? "not in the run" : `${(ms / 1000).toFixed(1)} s`;
}

function sumEur(takes: readonly { readonly priceEur: number }[]): number {
  return takes.reduce((sum, t) => sum + t.priceEur, 0);
}

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function share(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}
