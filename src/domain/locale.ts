import { match } from "@formatjs/intl-localematcher";

/**
 * The best of `available` (BCP 47 tags, the first one the default) for a request's locale: "nl-BE" finds "nl",
 * "zh-TW" finds "zh-Hant", anything without a match (or no locale, or a tag Intl refuses) gets the default.
 */
export function negotiateLocale(requested: string | undefined, available: readonly [string, ...string[]]): string {
  const fallback = available[0];
  if (requested === undefined || requested === "") return fallback;
  try {
    return match([requested], available, fallback, { algorithm: "best fit" });
  } catch {
    // A tag the validation let through but Intl cannot canonicalise (e.g. a repeated variant): the default.
    return fallback;
  }
}
