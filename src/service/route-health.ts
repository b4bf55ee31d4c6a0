import { DEFAULT_CONVERSION, type ConversionSettings } from "../domain/conversion.js";
import type { Clock } from "../domain/ports.js";
import type { RouteHealth } from "../domain/route.js";
import type { Executor } from "../store/database.js";
import { routeDeliveryStats, type DeliveryStats } from "../store/repositories/route-stats.js";
import { reopenPlansOnDistrustedSends } from "../store/repositories/verifications.js";
import { silentLogger, type Logger } from "../telemetry/logger.js";
import { RouteConversionTracker } from "./route-conversion.js";

export interface RouteHealthSettings {
  /** The rolling window receipts are counted over. */
  readonly windowMs: number;
  /** Fewer finished attempts than this say nothing: the route counts as healthy (and fewer deliveries give no latency percentile). */
  readonly minSamples: number;
  /** A delivery rate under this (with enough samples) makes the route unhealthy. */
  readonly minDeliveryRate: number;
  /** Conversion against its baseline, per country (its `minSamples` is this one's). */
  readonly conversion: Omit<ConversionSettings, "minSamples">;
}

export const DEFAULT_ROUTE_HEALTH: RouteHealthSettings = { windowMs: 3_600_000, minSamples: 20, minDeliveryRate: 0.5, conversion: DEFAULT_CONVERSION };

/**
 * Each route's delivery rate and receipt latency over a rolling window, and its conversion per country, recomputed
 * from the shared rollups by `refresh` (every replica computes the same from the same rows) and read synchronously
 * while planning.
 */
export class RouteHealthTracker {
  private current = new Map<string, RouteHealth>();
  private readonly conversion: RouteConversionTracker;

  constructor(
    private readonly db: Executor,
    private readonly clock: Clock,
    private readonly settings: RouteHealthSettings,
    /** Number prefixes conversion leaves out (flagged as SMS pumping). */
    excludedPrefixes: () => readonly string[] = () => [],
    private readonly log: Logger = silentLogger,
  ) {
    this.conversion = new RouteConversionTracker(db, clock, { minSamples: settings.minSamples, ...settings.conversion }, excludedPrefixes, log);
  }

  readonly get = (routeId: string): (RouteHealth) | undefined => this.current.get(routeId);

  async refresh(): Promise<void> {
    await this.conversion.refresh();
    const since = new Date(this.clock.now().getTime() - this.settings.windowMs);
    const next = new Map<string, RouteHealth>();
    const { minSamples } = this.settings;
    // A percentile from a handful of receipts would set deadlines by chance.
    const p95 = (s: DeliveryStats) => (s.delivered >= minSamples && s.p95LatencyMs !== null ? s.p95LatencyMs : undefined);
    for (const s of await routeDeliveryStats(this.db, since)) {
      const deliveryRate = s.finished === 0 ? 1 : s.delivered / s.finished;
      const byCountry = new Map([...s.countries].flatMap(([country, c]) => (p95(c) !== undefined ? [[country, p95(c)!] as const] : [])));
      next.set(s.routeId, {
        deliveryRate,
        samples: s.finished,
        healthy: s.finished < minSamples || deliveryRate >= this.settings.minDeliveryRate,
        ...(s.p50LatencyMs !== null ? { p50LatencyMs: s.p50LatencyMs } : {}),
        ...(p95(s) !== undefined ? { p95LatencyMs: p95(s)! } : {}),
        ...(byCountry.size > 0 ? { p95LatencyMsByCountry: byCountry } : {}),
        ...this.conversionOf(s.routeId),
      });
    }
    // Routes without receipts (email) are judged on conversion alone.
    for (const routeId of this.conversion.routeIds()) {
      if (!next.has(routeId)) next.set(routeId, { deliveryRate: 1, samples: 0, healthy: true, ...this.conversionOf(routeId) });
    }
    this.current = next;
    // After the new circuits are visible to planning and to the scheduler, which judges the reopened plans by them.
    await this.reopenStoppedPlans();
  }

  /**
   * A route passed over for its conversion may have said DELIVERED for messages nobody got: plans that stopped on
   * such a receipt would leave their people without a code. They are made due again and the scheduler moves them on
   * (see `judgeStep`). Kept until done, so a failure is tried again at the next refresh. With several replicas, one
   * whose circuit has not opened yet may judge a reopened plan done again; it reopens it when its own circuit opens,
   * and a plan that moved on is not reopened (once each).
   */
  private async reopenStoppedPlans(): Promise<void> {
    for (const sends of this.conversion.openedCircuits()) {
      const reopened = await reopenPlansOnDistrustedSends(this.db, sends, this.clock.now());
      this.conversion.reopened(sends);
      if (reopened > 0) {
        this.log.warn(`route ${sends.routeId}${sends.country ? ` to ${sends.country}` : ""} passed over: ${reopened} plans that stopped on its delivery receipts move on`, {
          route: sends.routeId,
          country: sends.country,
          plans: reopened,
        });
      }
    }
  }

  private conversionOf(routeId: string): Pick<RouteHealth, "conversion"> {
    const conversion = this.conversion.get(routeId);
    return conversion === undefined ? {} : { conversion };
  }
}
