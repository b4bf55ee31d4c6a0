import { addCounts, admittedShare, CLOSED, NO_CONVERSIONS, nextCircuit, type ConversionCounts, type ConversionSettings, type RouteCircuit } from "../domain/conversion.js";
import type { Clock } from "../domain/ports.js";
import type { CountryConversion } from "../domain/route.js";
import type { Executor } from "../store/database.js";
import type { DistrustedSends } from "../store/repositories/verifications.js";
import { conversionByMinute, type MinuteConversion } from "../store/repositories/conversion-stats.js";
import type { Logger } from "../telemetry/logger.js";
import { otpMetrics } from "../telemetry/metrics.js";

const MINUTE = 60_000;
const minuteOf = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;
const keyOf = (routeId: string, country: string) => `${routeId}\u0000${country}`;

/**
 * Each route's conversion to each country, recent against its baseline, and the circuit that decides whether plans
 * use it (see domain/conversion.ts). The per-minute counts of the whole baseline are read once, then only the
 * minutes that can still change, so a refresh costs the recent window whatever the traffic. Every replica computes
 * its circuits from the same shared counts.
 */
export class RouteConversionTracker {
  /** Minute (ms) → that minute's counts per route and country, over the baseline window. */
  private minutes = new Map<number, MinuteConversion[]>();
  private loaded = false;
  private circuits = new Map<string, RouteCircuit>();
  private views = new Map<string, Map<string, CountryConversion>>();
  /** Circuits that opened, as the sends they distrust, until `reopened` says their stopped plans were reopened. */
  private opened: DistrustedSends[] = [];

  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
    private readonly settings: ConversionSettings,
    /** Number prefixes left out of the counts (flagged as SMS pumping). */
    private readonly excluded: () => readonly string[],
    private readonly log: Logger,
  ) {}

  /** Conversion and circuit per country of one route; undefined when it sent nothing in the baseline window. */
  readonly get = (routeId: string): ReadonlyMap<string, CountryConversion> | undefined => this.views.get(routeId);

  /** The sends of circuits opened since the last look whose stopped plans are still to be reopened (oldest first). */
  openedCircuits(): readonly DistrustedSends[] {
    return this.opened;
  }

  /** The plans stopped on `sends` were reopened. */
  reopened(sends: DistrustedSends): void {
    this.opened = this.opened.filter((s) => s !== sends);
  }

  routeIds(): readonly string[] {
    return [...this.views.keys()];
  }

  async refresh(): Promise<void> {
    const now = this.clock.now();
    const baselineStart = minuteOf(now.getTime() - this.settings.baselineWindowMs);
    const recentStart = minuteOf(now.getTime() - this.settings.recentWindowMs);
    // Rows of a minute stop changing once it is over (a few seconds later, with clocks apart); the recent window is
    // read again whole, so a prefix flagged since the last look leaves it.
    const reloadFrom = this.loaded ? Math.min(recentStart, minuteOf(now.getTime()) - MINUTE) : baselineStart;
    const rows = await conversionByMinute(this.db, new Date(reloadFrom), this.excluded());
    for (const minute of this.minutes.keys()) if (minute >= reloadFrom || minute < baselineStart) this.minutes.delete(minute);
    for (const row of rows) {
      const minute = row.minute.getTime();
      const ofMinute = this.minutes.get(minute);
      if (ofMinute === undefined) this.minutes.set(minute, [row]);
      else ofMinute.push(row);
    }
    this.loaded = true;
    this.judge(now, recentStart);
  }

  private judge(now: Date, recentStart: number): void {
    const recent = new Map<string, ConversionCounts>();
    const baseline = new Map<string, ConversionCounts>();
    const probes = new Map<string, ConversionCounts>();
    const routes = new Map<string, { routeId: string; country: string }>();
    for (const [minute, rows] of this.minutes) {
      for (const row of rows) {
        const key = keyOf(row.routeId, row.country);
        routes.set(key, { routeId: row.routeId, country: row.country });
        const into = minute >= recentStart ? recent : baseline;
        into.set(key, addCounts(into.get(key) ?? NO_CONVERSIONS, row));
        const probingSince = this.circuits.get(key)?.probingSince;
        if (probingSince !== undefined && minute >= minuteOf(probingSince.getTime())) probes.set(key, addCounts(probes.get(key) ?? NO_CONVERSIONS, row));
      }
    }
    const views = new Map<string, Map<string, CountryConversion>>();
    for (const [key, { routeId, country }] of routes) {
      const before = this.circuits.get(key) ?? CLOSED;
      const seen = { recent: recent.get(key) ?? NO_CONVERSIONS, baseline: baseline.get(key) ?? NO_CONVERSIONS, probes: probes.get(key) ?? NO_CONVERSIONS };
      const circuit = nextCircuit(before, seen, this.settings, now);
      if (circuit.state !== before.state) this.changed(routeId, country, circuit);
      if (circuit.state === "closed") this.circuits.delete(key);
      else this.circuits.set(key, circuit);
      const byCountry = views.get(routeId) ?? new Map<string, CountryConversion>();
      byCountry.set(country, { recent: seen.recent, baseline: seen.baseline, circuit, admittedShare: admittedShare(circuit, this.settings) });
      views.set(routeId, byCountry);
    }
    this.views = views;
  }

  private changed(routeId: string, country: string, circuit: RouteCircuit): void {
    otpMetrics.circuitChanged(routeId, country, circuit.state);
    const where = `route ${routeId}${country ? ` to ${country}` : ""}`;
    if (circuit.state === "open" && circuit.distrustSince !== undefined) this.opened.push({ routeId, country, since: circuit.distrustSince });
    if (circuit.state === "closed") this.log.info(`${where} converts again: back in service`, { route: routeId, country });
    else this.log.warn(`${where} ${circuit.state === "open" ? "passed over" : "probed"}: ${circuit.reason}`, { route: routeId, country, state: circuit.state });
  }
}
