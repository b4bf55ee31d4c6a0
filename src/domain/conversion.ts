/**
 * Conversion — approvals ÷ sends — as the health signal of a route to a country: receipts can say "delivered" for
 * messages nobody got, and stay silent for messages that arrived, but a code that is used arrived. A route whose
 * conversion falls well below its own baseline is passed over (its circuit opens), tried again after a cool-off with
 * a small share of traffic (half-open), and closed again once those probes convert.
 */

/** Sends a provider accepted, and approvals with the codes those routes carried. */
export interface ConversionCounts {
  readonly sent: number;
  readonly approved: number;
}

export const NO_CONVERSIONS: ConversionCounts = { sent: 0, approved: 0 };

export function addCounts(a: ConversionCounts, b: ConversionCounts): ConversionCounts {
  return { sent: a.sent + b.sent, approved: a.approved + b.approved };
}

/** approved ÷ sent; undefined when nothing was sent. */
export function conversionRate(counts: ConversionCounts): number | undefined {
  return counts.sent === 0 ? undefined : Math.min(1, counts.approved / counts.sent);
}

export interface ConversionSettings {
  /**
   * The recent window compared with the baseline: short, so a drop shows within minutes. Counted by whole minutes
   * (the current one included), so a drop to nothing crosses half the baseline between W/2 and (W + 1 min)/2 after it.
   */
  readonly recentWindowMs: number;
  /** The baseline: the route's own conversion to the country over this window, before the recent one. */
  readonly baselineWindowMs: number;
  /** Sends needed in the recent window and in the baseline (and probes in half-open) before they say anything. */
  readonly minSamples: number;
  /** The circuit opens when recent conversion is under baseline × this. */
  readonly dropRatio: number;
  /** How long an open circuit passes the route over before probing it. */
  readonly coolOffMs: number;
  /** Share of plans (0–1) that probe a half-open route. */
  readonly probeShare: number;
  /** After the last probe is sent, how long its approval may take before the probes are judged. */
  readonly settleMs: number;
}

export const DEFAULT_CONVERSION: ConversionSettings = {
  recentWindowMs: 2 * 60_000,
  baselineWindowMs: 24 * 3_600_000,
  minSamples: 20,
  dropRatio: 0.5,
  coolOffMs: 5 * 60_000,
  probeShare: 0.1,
  settleMs: 60_000,
};

export type CircuitState = "closed" | "open" | "half-open";

export interface RouteCircuit {
  readonly state: CircuitState;
  /** Why the route is passed over (open, half-open). */
  readonly reason?: string;
  /** Open: when it goes half-open. */
  readonly retryAt?: Date;
  /** Half-open: probes are the sends from this time on. */
  readonly probingSince?: Date;
  /** Half-open: when enough probes had been sent; probing stops, and they are judged `settleMs` later. */
  readonly probesSentAt?: Date;
  /**
   * Open, half-open: the sends from this time on are the ones the drop was measured on, so their delivery receipts
   * do not show that a code arrived (a route can say DELIVERED for messages nobody got).
   */
  readonly distrustSince?: Date;
}

export const CLOSED: RouteCircuit = { state: "closed" };

/** What a route to a country did, as the circuit is judged on. */
export interface ConversionObservation {
  readonly recent: ConversionCounts;
  readonly baseline: ConversionCounts;
  /** Half-open: the sends since `probingSince` and their approvals. */
  readonly probes: ConversionCounts;
}

const percent = (rate: number) => `${Math.round(rate * 100)} %`;
const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;

/** The circuit after one look at the counts. */
export function nextCircuit(circuit: RouteCircuit, seen: ConversionObservation, settings: ConversionSettings, now: Date): RouteCircuit {
  const baseline = seen.baseline.sent >= settings.minSamples ? conversionRate(seen.baseline) : undefined;
  const open = (reason: string, distrustSince: Date): RouteCircuit => ({ state: "open", reason, retryAt: new Date(now.getTime() + settings.coolOffMs), distrustSince });
  switch (circuit.state) {
    case "closed": {
      const recent = conversionRate(seen.recent);
      if (baseline === undefined || recent === undefined || seen.recent.sent < settings.minSamples) return circuit;
      if (recent >= baseline * settings.dropRatio) return circuit;
      return open(
        `conversion ${percent(recent)} over the last ${minutes(settings.recentWindowMs)} (${seen.recent.sent} sends) against ${percent(baseline)} before`,
        new Date(now.getTime() - settings.recentWindowMs),
      );
    }
    case "open":
      if (now < circuit.retryAt!) return circuit;
      return {
        state: "half-open",
        reason: `${circuit.reason}; probing with ${percent(settings.probeShare)} of traffic`,
        probingSince: now,
        ...(circuit.distrustSince ? { distrustSince: circuit.distrustSince } : {}),
      };
    case "half-open": {
      if (circuit.probesSentAt === undefined) {
        return seen.probes.sent >= settings.minSamples ? { ...circuit, probesSentAt: now } : circuit;
      }
      if (now.getTime() - circuit.probesSentAt.getTime() < settings.settleMs) return circuit;
      const probed = conversionRate(seen.probes) ?? 0;
      if (baseline === undefined || probed >= baseline * settings.dropRatio) return CLOSED;
      return open(`probes converted ${percent(probed)} (${seen.probes.sent} sends) against ${percent(baseline)} before`, circuit.probingSince!);
    }
  }
}

/** Share of plans that may use the route now: all when closed, none when open, probes while half-open. */
export function admittedShare(circuit: RouteCircuit, settings: ConversionSettings): number {
  if (circuit.state === "closed") return 1;
  return circuit.state === "half-open" && circuit.probesSentAt === undefined ? settings.probeShare : 0;
}

/**
 * The sends of a route whose delivery receipts are not taken as a code arriving: from `since` (the circuit's
 * `distrustSince`) on, but before `until` while half-open — probes are judged by their own conversion, so their
 * receipts stand until that judgement (it reopens the circuit, distrusting them, if they did not convert).
 * Undefined when the route's receipts are trusted (closed).
 */
export function distrustedSends(circuit: RouteCircuit): { readonly since: Date; readonly until?: Date } | undefined {
  if (circuit.state === "closed" || circuit.distrustSince === undefined) return undefined;
  return circuit.state === "half-open" && circuit.probingSince !== undefined ? { since: circuit.distrustSince, until: circuit.probingSince } : { since: circuit.distrustSince };
}
