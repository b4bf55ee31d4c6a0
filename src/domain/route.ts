import type { Channel } from "./channel.js";

export type TrafficClass = "otp" | "transactional" | "marketing";

/** A named way out: provider + sender identity + traffic class + countries + price. */
export interface Route {
  readonly id: string;
  readonly channel: Channel;
  /** The configured provider it goes out through. */
  readonly provider: string;
  /** The route's name in the provider's own API (e.g. BridgeXAPI's route_id); our id when the same. */
  readonly providerRoute: string;
  readonly trafficClass: TrafficClass;
  /** SMS sender id, caller number, or from address: the one used unless a request names another allowed one. */
  readonly sender: string;
  /** Further senders a request may pick on this route (registered sender ids, numbers, from addresses). */
  readonly senders?: readonly string[];
  /** ISO 3166-1 alpha-2 codes; "*" serves every country. */
  readonly countries: readonly string[];
  readonly currency: string;
  /** Price per message (SMS: per segment) in micros, by country; "*" for the rest. */
  readonly pricesMicros: Readonly<Record<string, number>>;
}

/**
 * Whether a request may send as `sender` on `route`: the route's own sender or
 * one it lists, or one the caller's configuration lists. Senders are never
 * free-form: a made-up sender id is how phishing looks.
 */
export function senderAllowed(route: Route, sender: string, callerSenders: readonly string[] = []): boolean {
  return sender === route.sender || (route.senders ?? []).includes(sender) || callerSenders.includes(sender);
}

/** Country "*" stands for a destination without a country (email, push). */
export function servesCountry(route: Route, country: string | undefined): boolean {
  return route.countries.includes("*") || (country !== undefined && route.countries.includes(country));
}

export function unitPriceMicros(route: Route, country: string | undefined): number | undefined {
  return (country !== undefined ? route.pricesMicros[country] : undefined) ?? route.pricesMicros["*"];
}

/** A route's recent delivery record, as the health tracker sees it. */
export interface RouteHealth {
  /** Delivered ÷ finished attempts in the window; 1 when nothing finished yet. */
  readonly deliveryRate: number;
  /** Finished attempts the rate is computed from. */
  readonly samples: number;
  /** False when enough samples show a delivery rate under the threshold. */
  readonly healthy: boolean;
  /** Median submit → delivery time, when anything was delivered. */
  readonly p50LatencyMs?: number;
  /** 95th percentile of the same, once `minSamples` deliveries say it. */
  readonly p95LatencyMs?: number;
  /** The same per destination country (ISO 3166-1 alpha-2), for countries with `minSamples` deliveries. */
  readonly p95LatencyMsByCountry?: ReadonlyMap<string, number>;
}

/**
 * The first healthy candidate, in configuration order; when none is healthy,
 * the first candidate anyway (a weak route beats no route), flagged.
 */
export function chooseRoute(
  candidates: readonly Route[],
  health: (routeId: string) => RouteHealth | undefined,
): { route: Route; unhealthy: boolean } | undefined {
  if (candidates.length === 0) return undefined;
  const healthy = candidates.find((r) => health(r.id)?.healthy !== false);
  return healthy ? { route: healthy, unhealthy: false } : { route: candidates[0]!, unhealthy: true };
}
