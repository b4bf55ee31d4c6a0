import { windowStart } from "./limits.js";
import { formatMoney, type Money } from "./money.js";

/** Spend is counted per calendar day (UTC), not over a sliding 24 h: the day's counter row lives this long. */
export const SPEND_DAY_MS = 24 * 3_600_000;

/**
 * What a caller may spend per destination country per day (UTC), in one
 * currency: a country of its own, or the default for every other country.
 * Pumping attacks run up bills to countries a service rarely serves; a cap per
 * country bounds what one such day can cost without refusing the others.
 */
export interface DailySpendCap {
  readonly currency: string;
  /** Per ISO 3166-1 alpha-2 country, in micros of `currency`. */
  readonly countries: ReadonlyMap<string, number>;
  /** Every country not listed, in micros; no cap for them when undefined. */
  readonly otherCountries?: number;
}

/** The cap on one country's spend, in micros; none when undefined. */
export function capFor(cap: DailySpendCap | undefined, country: string | undefined): Money | undefined {
  if (cap === undefined || country === undefined) return undefined;
  const micros = cap.countries.get(country) ?? cap.otherCountries;
  return micros === undefined ? undefined : { currency: cap.currency, micros };
}

/** The counter a caller's spend on one country is kept under (one row per day). */
export function spendKey(callerId: string, country: string): string {
  return `spend:${callerId}:${country}`;
}

/** The start of the UTC day `now` is in. */
export function spendDay(now: Date): Date {
  return windowStart(now, SPEND_DAY_MS);
}

/** When the day's cap lifts: the next UTC midnight. */
export function nextSpendDay(now: Date): Date {
  return new Date(spendDay(now).getTime() + SPEND_DAY_MS);
}

/** Why a charge is refused, for a caller's error or a skipped step's reason. */
export function capReachedReason(country: string, cap: Money): string {
  return `the daily spend cap for ${country} (${formatMoney(cap)}) is reached`;
}
