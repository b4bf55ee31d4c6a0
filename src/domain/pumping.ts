/**
 * SMS pumping: someone requests codes for numbers they profit from (premium ranges, numbers of a colluding carrier)
 * and never uses them. It shows as a number prefix with many sends and almost no approvals, while the rest of its
 * country converts as usual.
 */
import { conversionRate, type ConversionCounts } from "./conversion.js";

export type PumpingMode = "block" | "monitor" | "off";

export interface PumpingSettings {
  /** block: refuse SMS and calls to a flagged prefix; monitor: flag and report only; off: do not look. */
  readonly mode: PumpingMode;
  /** The window sends and approvals are counted over. */
  readonly windowMs: number;
  /** Sends to a prefix in the window before it is judged (the volume floor). */
  readonly minSends: number;
  /** Flagged when its conversion is under its country's (the other prefixes') × this. */
  readonly conversionRatio: number;
  /** How long a flag lasts; a prefix still pumped afterwards is flagged again. */
  readonly blockMs: number;
  /** E.164 prefixes never flagged, nor refused (e.g. "+3161234", "+44"). */
  readonly allow: readonly string[];
}

export const DEFAULT_PUMPING: PumpingSettings = {
  mode: "block",
  windowMs: 10 * 60_000,
  minSends: 30,
  conversionRatio: 0.25,
  blockMs: 12 * 3_600_000,
  allow: [],
};

/** A prefix's counts in the window, and those of its country's quiet prefixes (under the volume floor). */
export interface PrefixCounts {
  readonly prefix: string;
  readonly country: string;
  readonly own: ConversionCounts;
  /** Ordinary traffic is spread thin over many prefixes; an attack on several prefixes at once is not in here. */
  readonly quiet: ConversionCounts;
}

const percent = (rate: number) => `${Math.round(rate * 100)} %`;

/**
 * Why the prefix looks pumped, or undefined. Its conversion is compared with its country's quiet prefixes over the
 * same window — approvals lag sends alike on both sides — or, while they sent too little to say, with 100 %.
 */
export function pumpingVerdict(counts: PrefixCounts, settings: PumpingSettings): string | undefined {
  const { own } = counts;
  if (own.sent < settings.minSends || settings.allow.some((allowed) => counts.prefix.startsWith(allowed))) return undefined;
  const measured = counts.quiet.sent >= settings.minSends;
  const reference = measured ? conversionRate(counts.quiet)! : 1;
  const rate = conversionRate(own)!;
  if (rate >= reference * settings.conversionRatio) return undefined;
  const window = `${Math.round(settings.windowMs / 60_000)} min`;
  const rest = measured ? `the rest of ${counts.country || "its country"} ${percent(reference)}` : "too little other traffic to compare";
  return `${own.sent} sends and ${own.approved} approvals in ${window} (conversion ${percent(rate)}; ${rest})`;
}

/** Whether a number is allowed whatever the flags say. */
export function allowedNumber(phone: string, settings: PumpingSettings): boolean {
  return settings.allow.some((allowed) => phone.startsWith(allowed));
}
