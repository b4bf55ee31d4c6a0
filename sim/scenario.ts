import { SeededRandom } from "./random.js";

/** How an SMS route's network treats a message: whether the phone gets it, and when, and what the receipt says. */
export interface SmsRouteScript {
  /** The route's id in the configuration, and the provider's route number it is sent with. */
  readonly routeId: string;
  readonly providerRoute: number;
  readonly country: string;
  readonly priceEur: number;
  /** Messages lost without a trace: no arrival, no receipt. */
  readonly silentLoss: number;
  /** When the phone gets a message, after the provider took it (ms). */
  readonly arrivalMs: readonly [number, number];
  /** When the receipt comes, after the provider took it (ms). */
  readonly receiptMs: readonly [number, number];
  /** From this time into the run, messages stop arriving while receipts still say DELIVERED (a carrier incident). */
  readonly degradesAtMs?: number;
}

/** Users of one destination country, all served first by one SMS route. */
export interface Cohort {
  readonly name: string;
  readonly country: string;
  /** The country's mobile numbers: `prefix` and `digits` random digits. */
  readonly numberPrefix: string;
  readonly digits: number;
  readonly share: number;
  readonly what: string;
}

/** Requests for codes to one number prefix that nobody will ever type: SMS pumping. */
export interface Attack {
  readonly prefix: string;
  readonly digits: number;
  readonly startMs: number;
  readonly perSecond: number;
  readonly durationMs: number;
}

export interface Scenario {
  readonly mode: "full" | "ci";
  readonly seed: number;
  readonly users: number;
  /** Users ask for codes evenly over this long. */
  readonly arrivalsMs: number;
  /** Users asking before this are warm-up: they give routes a history and are not measured. */
  readonly warmUpMs: number;
  /** A user who holds no code this long after asking gives up. */
  readonly giveUpMs: number;
  /** How long a person takes to type a code they hold. */
  readonly typing: { readonly medianMs: number; readonly sigma: number; readonly minMs: number; readonly maxMs: number };
  readonly cohorts: readonly Cohort[];
  readonly smsRoutes: readonly SmsRouteScript[];
  readonly emailLoss: number;
  readonly emailArrivalMs: readonly [number, number];
  /** A call rings and the code is read out this long after it is placed. */
  readonly callArrivalMs: readonly [number, number];
  readonly attack: Attack;
  /** Settings of the service for this scenario (windows a short run can fill). */
  readonly serviceEnv: Readonly<Record<string, string>>;
}

/**
 * Three countries, each first served by an SMS route with one kind of trouble:
 * NL's loses 30 % of messages without a receipt (receipts in 1–3 s otherwise);
 * BE's delivers at once but reports 20–60 s late; DE's stops delivering at
 * `degradesAtMs` while its receipts still say DELIVERED (a second DE route is
 * healthy). Email loses 5 %; calls always come. A pumping attack floods one
 * Dutch prefix. `ci` is the same story in about 90 s, without the DE incident:
 * conversion is counted per minute and compared over `OTP_ROUTE_CONVERSION_WINDOW`
 * (at least a minute), which a run of that length cannot fill before and after
 * a drop.
 */
export function scenario(mode: "full" | "ci", seed: number, users?: number): Scenario {
  const full = mode === "full";
  const degradesAtMs = full ? 150_000 : undefined;
  return {
    mode,
    seed,
    users: users ?? (full ? 2_000 : 300),
    arrivalsMs: full ? 300_000 : 70_000,
    warmUpMs: full ? 60_000 : 25_000,
    giveUpMs: full ? 90_000 : 30_000,
    typing: { medianMs: 6_000, sigma: 0.5, minMs: 2_000, maxMs: 45_000 },
    cohorts: [
      { name: "nl", country: "NL", numberPrefix: "+3161", digits: 7, share: 0.4, what: "NL: SMS route silently loses 30 %, receipts in 1–3 s" },
      { name: "be", country: "BE", numberPrefix: "+3247", digits: 7, share: 0.3, what: "BE: SMS arrives at once, receipts 20–60 s late" },
      {
        name: "de",
        country: "DE",
        numberPrefix: "+49151",
        digits: 8,
        share: 0.3,
        what: degradesAtMs ? `DE: first SMS route stops delivering at ${degradesAtMs / 1000} s, receipts still DELIVERED` : "DE: healthy SMS route",
      },
    ],
    smsRoutes: [
      { routeId: "sms-nl", providerRoute: 1, country: "NL", priceEur: 0.072, silentLoss: 0.3, arrivalMs: [800, 2_500], receiptMs: [1_000, 3_000] },
      { routeId: "sms-be", providerRoute: 2, country: "BE", priceEur: 0.09, silentLoss: 0, arrivalMs: [300, 1_500], receiptMs: [20_000, 60_000] },
      { routeId: "sms-de-a", providerRoute: 3, country: "DE", priceEur: 0.08, silentLoss: 0, arrivalMs: [800, 2_500], receiptMs: [1_000, 3_000], ...(degradesAtMs ? { degradesAtMs } : {}) },
      { routeId: "sms-de-b", providerRoute: 4, country: "DE", priceEur: 0.095, silentLoss: 0, arrivalMs: [800, 2_500], receiptMs: [1_000, 3_000] },
    ],
    emailLoss: 0.05,
    emailArrivalMs: [500, 3_000],
    callArrivalMs: [3_000, 6_000],
    attack: full
      ? { prefix: "+316555", digits: 5, startMs: 120_000, perSecond: 5, durationMs: 60_000 }
      : { prefix: "+316555", digits: 5, startMs: 30_000, perSecond: 8, durationMs: 25_000 },
    serviceEnv: full
      ? {}
      : // Fewer users: a country's p95 receipt latency is trusted from 10 receipts instead of 20.
        { OTP_ROUTE_HEALTH_MIN_SAMPLES: "10" },
  };
}

/** One simulated person: who they are, when they ask, how long they take to type. */
export interface SimUser {
  readonly id: number;
  readonly cohort: Cohort;
  readonly phone: string;
  readonly email: string;
  readonly clientIp: string;
  readonly requestAtMs: number;
  readonly typingMs: number;
  readonly warmUp: boolean;
}

/** The scenario's users, the same for the same seed; no two share a number, none in the attacked prefix. */
export function drawUsers(s: Scenario): SimUser[] {
  const random = new SeededRandom(s.seed);
  const taken = new Set<string>();
  const users: SimUser[] = [];
  for (let id = 0; id < s.users; id++) {
    const cohort = pickCohort(s.cohorts, random.next());
    let phone: string;
    do phone = cohort.numberPrefix + random.digits(cohort.digits);
    while (taken.has(phone) || phone.startsWith(s.attack.prefix));
    taken.add(phone);
    const requestAtMs = Math.round((id / s.users) * s.arrivalsMs + random.between(0, s.arrivalsMs / s.users));
    users.push({
      id,
      cohort,
      phone,
      email: `user${id}@mail.example`,
      clientIp: `198.18.${(id >> 8) & 255}.${id & 255}`,
      requestAtMs,
      typingMs: Math.round(random.humanDelay(s.typing.medianMs, s.typing.sigma, s.typing.minMs, s.typing.maxMs)),
      warmUp: requestAtMs < s.warmUpMs,
    });
  }
  return users;
}

function pickCohort(cohorts: readonly Cohort[], roll: number): Cohort {
  let edge = 0;
  for (const cohort of cohorts) {
    edge += cohort.share;
    if (roll < edge) return cohort;
  }
  return cohorts.at(-1)!;
}
