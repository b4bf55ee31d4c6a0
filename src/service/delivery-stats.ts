import type { Channel } from "../domain/channel.js";
import type { Money } from "../domain/money.js";
import { deliveryStats, type StatsGroup } from "../store/repositories/delivery-stats.js";
import type { Caller, ServiceDeps } from "./deps.js";

export type { StatsGroup };

/** Longest window one request may ask about. */
export const MAX_STATS_WINDOW_MS = 31 * 86_400_000;
/** A time series' shortest bucket, and most buckets in one answer. */
export const MIN_STATS_INTERVAL_MS = 60_000;
export const MAX_STATS_BUCKETS = 1_000;

export interface StatsQuery {
  readonly from: Date;
  readonly to: Date;
  readonly groupBy: readonly StatsGroup[];
  /** Splits the window into buckets of this length (a time series). */
  readonly intervalMs?: number;
}

export interface DeliveryStatsView {
  /** With an interval: where this row's bucket starts. */
  readonly bucketStart?: Date;
  readonly channel?: Channel;
  readonly routeId?: string;
  readonly country?: string;
  /** The attempts' position in their plans (0: the first message). */
  readonly stepIndex?: number;
  /** The destination phone number's prefix ("" without one). */
  readonly numberPrefix?: string;
  readonly attempts: number;
  readonly submitted: number;
  readonly delivered: number;
  /** delivered ÷ submitted, 0–1; an attempt without a receipt counts as not delivered. */
  readonly deliveryRate: number;
  readonly receiptLatencyP50Ms: number;
  readonly receiptLatencyP95Ms: number;
  readonly approved: number;
  /** approved ÷ attempts, 0–1. */
  readonly conversion: number;
  readonly escalated: number;
  /** escalated ÷ attempts, 0–1. */
  readonly fallbackRate: number;
  readonly cost: Money;
  /** Undefined when nothing was approved. */
  readonly costPerApproval?: Money;
}

/** The caller's delivery, conversion, fallback and cost figures for attempts queued in the window. */
export async function getDeliveryStats(deps: ServiceDeps, caller: Caller, query: StatsQuery): Promise<DeliveryStatsView[]> {
  const rows = await deliveryStats(deps.db, caller.id, query, query.groupBy);
  return rows.map((r) => ({
    attempts: r.attempts,
    submitted: r.submitted,
    delivered: r.delivered,
    deliveryRate: ratio(r.delivered, r.submitted),
    receiptLatencyP50Ms: Math.round(r.p50_ms ?? 0),
    receiptLatencyP95Ms: Math.round(r.p95_ms ?? 0),
    approved: r.approved,
    conversion: ratio(r.approved, r.attempts),
    escalated: r.escalated,
    fallbackRate: ratio(r.escalated, r.attempts),
    cost: { currency: r.currency, micros: Number(r.cost_micros) },
    ...(r.bucket !== null && query.intervalMs !== undefined ? { bucketStart: new Date(query.from.getTime() + r.bucket * query.intervalMs) } : {}),
    ...(r.channel !== null ? { channel: r.channel as Channel } : {}),
    ...(r.route_id !== null ? { routeId: r.route_id } : {}),
    ...(r.country !== null ? { country: r.country } : {}),
    ...(r.step_index !== null ? { stepIndex: r.step_index } : {}),
    ...(r.prefix !== null ? { numberPrefix: r.prefix } : {}),
    ...(r.approved > 0 ? { costPerApproval: { currency: r.currency, micros: Math.round(Number(r.cost_micros) / r.approved) } } : {}),
  }));
}

function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}
