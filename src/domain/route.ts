import type { Channel } from "./channel.js";
import type { ConversionCounts, RouteCircuit } from "./conversion.js";

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
  /** Conversion and its circuit per destination country ("" for destinations without one), where anything was sent. */
  readonly conversion?: ReadonlyMap<string, CountryConversion>;
}

/** A route's conversion to one country: recent against its baseline, and the circuit they set. */
export interface CountryConversion {
  readonly recent: ConversionCounts;
  readonly baseline: ConversionCounts;
  readonly circuit: RouteCircuit;
  /** Share of plans (0–1) that may use the route to this country now (see `admittedShare`). */
  readonly admittedShare: number;
}

export interface ChosenRoute {
  readonly route: Route;
  /** No candidate was healthy and admitted: this is the first one anyway. */
  readonly unhealthy: boolean;
  /** Why candidates ahead of the chosen one were passed over (one line each). */
  readonly passedOver: readonly string[];
}

/**
 * The first candidate, in configuration order, that is healthy and whose conversion circuit to the country admits
 * this plan (`roll`: uniform in [0, 1), drawn per plan, decides the probes of a half-open circuit); when none is,
 * the first candidate anyway (a weak route beats no route), flagged.
 */
export function chooseRoute(
  candidates: readonly Route[],
  health: (routeId: string) => RouteHealth | undefined,
  country: string,
  roll: () => number,
): ChosenRoute | undefined {
  if (candidates.length === 0) return undefined;
  const passedOver: string[] = [];
  for (const route of candidates) {
    const h = health(route.id);
    if (h?.healthy === false) {
      passedOver.push(`route ${route.id} passed over: delivery rate ${Math.round(h.deliveryRate * 100)} % over ${h.samples} receipts`);
      continue;
    }
    const conversion = h?.conversion?.get(country);
    if (conversion !== undefined && conversion.admittedShare < 1 && !(conversion.admittedShare > 0 && roll() < conversion.admittedShare)) {
      passedOver.push(`route ${route.id} passed over${country ? ` for ${country}` : ""}: ${conversion.circuit.reason ?? conversion.circuit.state}`);
      continue;
    }
    return { route, unhealthy: false, passedOver };
  }
  return { route: candidates[0]!, unhealthy: true, passedOver };
}
